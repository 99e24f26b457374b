use super::*;

const KEY_A: &str = "8f3c1e2d4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const KEY_B: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const PROVIDER: &str = "b2a40000-0000-4000-8000-000000000001";
const OTHER: &str = "b2a40000-0000-4000-8000-000000000002";

fn key(text: &str) -> MasterKey {
    MasterKey::parse(text).unwrap()
}

fn plain() -> Value {
    json!({"api_key": "sk_live_4f9a8c7e2b1d", "org": "acme"})
}

#[test]
fn sealed_credentials_open_with_their_key_for_their_provider() {
    let a = key(KEY_A);
    let sealed = seal(&a, PROVIDER, &plain(), [7; 12]);
    assert!(is_sealed(&sealed));
    assert_eq!(sealed_key_id(&sealed), Some(a.id()));
    assert_eq!(open(&a, PROVIDER, &sealed), Ok(plain()));
    // the key's file may end with a newline
    assert_eq!(
        open(&key(&format!("  {KEY_A}\n")), PROVIDER, &sealed),
        Ok(plain())
    );
}

#[test]
fn nothing_of_the_secret_shows_in_the_sealed_value() {
    let sealed = seal(&key(KEY_A), PROVIDER, &plain(), [1; 12]);
    let text = sealed.to_string();
    for secret in ["sk_live", "4f9a8c7e2b1d", "acme", "api_key"] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(!text.contains(KEY_A) && !format!("{:?}", key(KEY_A)).contains(KEY_A));
}

#[test]
fn another_key_is_named_not_guessed_at() {
    let sealed = seal(&key(KEY_A), PROVIDER, &plain(), [2; 12]);
    let b = key(KEY_B);
    assert_eq!(
        open(&b, PROVIDER, &sealed),
        Err(OpenError::OtherKey(key(KEY_A).id().into()))
    );
    assert_eq!(
        open(&b, PROVIDER, &sealed).unwrap_err().to_string(),
        format!(
            "the credentials were sealed under key {}, which this server does not have",
            key(KEY_A).id()
        )
    );
    assert_ne!(key(KEY_A).id(), b.id());
    assert_eq!(key(KEY_A).id().len(), 16);
}

#[test]
fn a_sealed_value_copied_to_another_provider_or_changed_does_not_open() {
    let a = key(KEY_A);
    let sealed = seal(&a, PROVIDER, &plain(), [3; 12]);
    assert!(matches!(
        open(&a, OTHER, &sealed),
        Err(OpenError::Damaged(_))
    ));
    let mut changed = sealed.clone();
    let data = changed["data"].as_str().unwrap().to_string();
    // the first byte's low bit flipped
    let first = u8::from_str_radix(&data[..2], 16).unwrap() ^ 1;
    let flipped = format!("{first:02x}{}", &data[2..]);
    changed["data"] = json!(flipped);
    assert!(matches!(
        open(&a, PROVIDER, &changed),
        Err(OpenError::Damaged(_))
    ));
    for broken in [
        json!({"api_key": "plain"}),
        json!({SEALED: 2, "key_id": a.id()}),
        json!({SEALED: 1}),
        json!({SEALED: 1, "key_id": a.id(), "nonce": "zz", "data": "00"}),
        json!({SEALED: 1, "key_id": a.id(), "nonce": "0011", "data": "00"}),
        json!({SEALED: 1, "key_id": a.id(), "nonce": sealed["nonce"], "data": "00"}),
    ] {
        assert!(
            matches!(open(&a, PROVIDER, &broken), Err(OpenError::Damaged(_))),
            "{broken}"
        );
    }
}

#[test]
fn nonces_make_each_sealing_different() {
    let a = key(KEY_A);
    assert_ne!(
        seal(&a, PROVIDER, &plain(), [4; 12]),
        seal(&a, PROVIDER, &plain(), [5; 12])
    );
}

#[test]
fn keys_are_64_hex_digits_and_not_shown_when_refused() {
    for bad in [
        "",
        "abc",
        &KEY_A[..63],
        &format!("{KEY_A}00"),
        &"g".repeat(64),
        &"0".repeat(64),
    ] {
        let err = MasterKey::parse(bad).unwrap_err();
        assert!(bad.len() < 8 || !err.contains(bad), "{err}");
    }
    assert!(MasterKey::parse(&KEY_A.to_uppercase()).is_ok());
}

#[test]
fn a_key_file_lists_keys_the_first_sealing_each_opening_its_own() {
    let text = format!("# pg_dialer credentials key\n\n{KEY_B}\n  {KEY_A}  \n");
    let keys = parse_keys(&text).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].id(), key(KEY_B).id());
    let under_a = seal(&key(KEY_A), PROVIDER, &plain(), [6; 12]);
    let under_b = seal(&keys[0], PROVIDER, &plain(), [7; 12]);
    assert_eq!(open_any(&keys, PROVIDER, &under_a).unwrap(), plain());
    assert_eq!(open_any(&keys, PROVIDER, &under_b).unwrap(), plain());
    // a key the file no longer has is named
    assert_eq!(
        open_any(&keys[..1], PROVIDER, &under_a),
        Err(OpenError::OtherKey(key(KEY_A).id().to_string()))
    );
}

#[test]
fn a_key_file_without_keys_or_with_a_bad_line_is_refused_without_its_text() {
    assert!(parse_keys("").is_err());
    assert!(parse_keys("# only a comment\n").is_err());
    let err = parse_keys(&format!("{KEY_A}\nsecret-not-a-key\n")).unwrap_err();
    assert!(err.starts_with("line 2: "), "{err}");
    assert!(!err.contains("secret-not-a-key"), "{err}");
}
