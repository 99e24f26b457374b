use super::*;
use crate::providers::Failure;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

const KEY: &str = "sk_test_91c4e2";

/// What a test server does with a request: answer with these bytes, or
/// hang, or close the connection.
#[derive(Clone)]
enum Reply {
    Raw(String),
    Hang,
    Close,
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut text = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    Reply::Raw(text)
}

/// A request as the server read it.
#[derive(Debug, Clone)]
struct Received {
    head: String,
    body: String,
}

/// A server on 127.0.0.1 answering every request with `answer(n)` after
/// `delay`, counting the requests it serves at once.
struct Server {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    most_at_once: Arc<AtomicI64>,
}

fn serve(delay: Duration, answer: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let most_at_once = Arc::new(AtomicI64::new(0));
    let (r, m) = (received.clone(), most_at_once.clone());
    let answer = Arc::new(answer);
    let now = Arc::new(AtomicI64::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (r, m, answer, now) = (r.clone(), m.clone(), answer.clone(), now.clone());
            std::thread::spawn(move || {
                let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(at_once, Ordering::SeqCst);
                handle(stream, delay, &r, &*answer);
                now.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Server {
        url,
        received,
        most_at_once,
    }
}

fn handle(
    stream: TcpStream,
    delay: Duration,
    received: &Mutex<Vec<Received>>,
    answer: &dyn Fn(usize) -> Reply,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let n = {
        let mut all = received.lock().unwrap();
        all.push(Received {
            head,
            body: String::from_utf8(body).unwrap(),
        });
        all.len() - 1
    };
    std::thread::sleep(delay);
    let mut stream = stream;
    match answer(n) {
        Reply::Raw(text) => {
            let _ = stream.write_all(text.as_bytes());
        }
        Reply::Hang => std::thread::sleep(Duration::from_secs(30)),
        Reply::Close => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn outgoing(url: &str, provider: Provider, body: &str) -> Outgoing {
    Outgoing {
        provider,
        url: format!("{url}{}", provider.create_call_path()),
        request: HttpRequest {
            path: provider.create_call_path(),
            headers: vec![
                ("authorization", format!("Bearer {KEY}")),
                ("content-type", "application/json".into()),
            ],
            body: body.into(),
        },
        key: KEY.into(),
    }
}

fn limits(timeout_ms: u64, in_flight: usize) -> Limits {
    Limits {
        timeout: Duration::from_millis(timeout_ms),
        connect_timeout: Duration::from_millis(timeout_ms),
        in_flight,
    }
}

fn failure(answer: &Answer) -> &Failure {
    match answer {
        Answer::Failed(failure) => failure,
        placed => panic!("not a failure: {placed:?}"),
    }
}

#[test]
fn a_request_goes_out_as_built_and_its_call_id_comes_back() {
    let server = serve(Duration::ZERO, |_| {
        reply(201, &[], r#"{"id":"call-1","status":"queued"}"#)
    });
    let body = r#"{"assistantId":"a","customer":{"number":"+14155550123"}}"#;
    let answers = send_all(
        &[outgoing(&server.url, Provider::Vapi, body)],
        limits(5000, 4),
        &mut || {},
    );
    assert_eq!(
        answers,
        vec![Answer::Placed {
            provider_call_id: "call-1".into()
        }]
    );
    let received = server.received.lock().unwrap();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].head.starts_with("POST /call HTTP/1.1"),
        "{}",
        received[0].head
    );
    assert!(
        received[0]
            .head
            .contains(&format!("authorization: Bearer {KEY}")),
        "{}",
        received[0].head
    );
    assert_eq!(received[0].body, body);
}

#[test]
fn answers_come_back_in_order_with_requests_in_flight_at_once() {
    let server = serve(Duration::from_millis(150), |n| {
        reply(201, &[], &format!(r#"{{"call_id":"c{n}"}}"#))
    });
    let all: Vec<Outgoing> = (0..12)
        .map(|i| outgoing(&server.url, Provider::Retell, &format!(r#"{{"n":{i}}}"#)))
        .collect();
    let answers = send_all(&all, limits(5000, 4), &mut || {});
    // four at once (each answer waits 150 ms), never more
    assert_eq!(server.most_at_once.load(Ordering::SeqCst), 4);
    let received = server.received.lock().unwrap();
    for (i, answer) in answers.iter().enumerate() {
        // the answer at i is the one to the request that carried {"n": i}
        let n = received
            .iter()
            .position(|r| r.body == format!(r#"{{"n":{i}}}"#))
            .unwrap();
        assert_eq!(
            answer,
            &Answer::Placed {
                provider_call_id: format!("c{n}")
            }
        );
    }
}

#[test]
fn a_rate_limit_pauses_and_a_server_error_is_retried() {
    let server = serve(Duration::ZERO, |n| {
        if n == 0 {
            reply(
                429,
                &[("retry-after", "4")],
                r#"{"status":"error","message":"Account rate limited"}"#,
            )
        } else {
            reply(503, &[], "<html>unavailable</html>")
        }
    });
    let all = [outgoing(&server.url, Provider::Retell, "{}")];
    let answers = send_all(&all, limits(5000, 1), &mut || {});
    let f = failure(&answers[0]);
    assert!(f.retryable);
    assert_eq!(f.pause, Some(Duration::from_secs(4)));
    let answers = send_all(&all, limits(5000, 1), &mut || {});
    let f = failure(&answers[0]);
    assert_eq!(
        (f.retryable, f.reason.as_str()),
        (true, "retell 503: <html>unavailable</html>")
    );
}

#[test]
fn a_provider_that_hangs_or_hangs_up_is_retried_as_perhaps_reached() {
    let server = serve(Duration::ZERO, |n| {
        if n == 0 {
            Reply::Hang
        } else {
            Reply::Close
        }
    });
    let all = [outgoing(&server.url, Provider::Bland, "{}")];
    let answers = send_all(&all, limits(300, 1), &mut || {});
    let f = failure(&answers[0]);
    assert!(f.retryable);
    assert!(
        f.reason
            .starts_with("bland did not answer: no answer within the timeout"),
        "{}",
        f.reason
    );
    let answers = send_all(&all, limits(3000, 1), &mut || {});
    let f = failure(&answers[0]);
    assert!(f.retryable);
    assert!(
        f.reason.starts_with("bland did not answer: "),
        "{}",
        f.reason
    );
}

#[test]
fn the_caller_is_ticked_while_requests_are_out() {
    let server = serve(Duration::from_millis(200), |_| {
        reply(201, &[], r#"{"id":"c"}"#)
    });
    let mut ticks = 0;
    send_all(
        &[outgoing(&server.url, Provider::Vapi, "{}")],
        limits(5000, 1),
        &mut || ticks += 1,
    );
    assert!(ticks >= 2, "{ticks}");
}

#[test]
fn a_provider_that_cannot_be_reached_certainly_got_nothing() {
    // a port nobody listens on
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let all = [outgoing(
        &format!("http://127.0.0.1:{port}"),
        Provider::Vapi,
        "{}",
    )];
    let answers = send_all(&all, limits(2000, 1), &mut || {});
    let f = failure(&answers[0]);
    assert!(f.retryable);
    assert!(
        f.reason.starts_with("vapi could not be reached: "),
        "{}",
        f.reason
    );
}

#[test]
fn redirects_are_not_followed_and_garbage_is_survived() {
    let server = serve(Duration::ZERO, |n| match n {
        0 => reply(302, &[("location", "http://127.0.0.1:9/steal")], ""),
        1 => Reply::Raw("\u{0}\u{1}garbage that is not HTTP\r\n\r\n".into()),
        _ => reply(500, &[], &"x".repeat(1 << 20)),
    });
    let all = [outgoing(&server.url, Provider::Vapi, "{}")];
    let f = failure(&send_all(&all, limits(3000, 1), &mut || {})[0]).clone();
    assert_eq!(
        (f.retryable, f.reason.as_str()),
        (false, "vapi 302: (no body)")
    );
    assert_eq!(
        server.received.lock().unwrap().len(),
        1,
        "the redirect was not followed"
    );
    let f = failure(&send_all(&all, limits(3000, 1), &mut || {})[0]).clone();
    assert!(f.retryable, "{}", f.reason);
    assert!(
        f.reason.starts_with("vapi did not answer: "),
        "{}",
        f.reason
    );
    // a huge answer is read no further than a reason can show
    let f = failure(&send_all(&all, limits(3000, 1), &mut || {})[0]).clone();
    assert!(f.retryable);
    assert!(f.reason.chars().count() <= crate::providers::MAX_REASON_CHARS + 1);
}

#[test]
fn the_key_never_shows_in_a_reason() {
    let echo = format!(r#"{{"message":"bad key {KEY}"}}"#);
    let server = serve(Duration::ZERO, move |_| reply(401, &[], &echo));
    let f = failure(
        &send_all(
            &[outgoing(&server.url, Provider::Vapi, "{}")],
            limits(3000, 1),
            &mut || {},
        )[0],
    )
    .clone();
    assert_eq!(f.reason, "vapi 401: bad key [redacted]");
    assert!(!f.retryable);
}

/// This thread's blocked signals.
fn blocked() -> Vec<i32> {
    // SAFETY: reads this thread's mask into a zeroed set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
        (1..32)
            .filter(|s| libc::sigismember(&set, *s) == 1)
            .collect()
    }
}

#[test]
fn sender_threads_block_every_signal_and_the_caller_keeps_its_mask() {
    let before = blocked();
    let seen: Arc<std::sync::Mutex<Vec<i32>>> = Arc::default();
    let server = serve(Duration::from_millis(0), |n| {
        reply(201, &[], &format!(r#"{{"call_id":"c{n}"}}"#))
    });
    let flight = start(
        vec![outgoing(&server.url, Provider::Retell, "{}")],
        limits(5000, 1),
    );
    // the thread the flight runs on blocks what start() blocked for it: all
    let mask = BlockedSignals::all();
    let inherited = {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || *seen.lock().unwrap() = blocked())
    };
    drop(mask);
    inherited.join().unwrap();
    assert_eq!(flight.wait(&mut || {}).len(), 1);
    assert!(seen.lock().unwrap().contains(&libc::SIGTERM));
    assert!(seen.lock().unwrap().contains(&libc::SIGUSR1));
    assert_eq!(blocked(), before);
}
