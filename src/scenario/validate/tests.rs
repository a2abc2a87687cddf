//! Unit tests of validation: each rule on a small scenario, checked by message and position.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bounds;
use crate::scenario::endpoint::{Endpoint, TcpHost, TcpPort};
use crate::scenario::*;

fn environment(temp_dir: &str) -> Environment {
    Environment {
        temp_dir: PathBuf::from(temp_dir),
        open_files: None,
    }
}

/// The errors of `text`, as `line:column: message`.
fn errors_in(text: &str, temp_dir: &str) -> Vec<String> {
    match parse_in(Path::new("t.toml"), text, "t", &environment(temp_dir)) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| match e.position {
                Some(p) => format!("{}:{}: {}", p.line, p.column, e.message),
                None => format!("-: {}", e.message),
            })
            .collect(),
    }
}

fn errors(text: &str) -> Vec<String> {
    errors_in(text, "/tmp")
}

fn valid(text: &str) -> Scenario {
    parse_in(Path::new("t.toml"), text, "t", &environment("/tmp"))
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Asserts exactly one error, at `position`, containing `message`.
#[track_caller]
fn rejected(text: &str, position: &str, message: &str) {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(&format!("{position}: ")) && errors[0].contains(message),
        "{errors:#?}, wanted {position}: …{message}…"
    );
}

const PUB: &str = "[[nodes]]\nname = \"pub\"\nkind = \"publisher\"\nbind = \"auto\"\n";

#[test]
fn defaults_are_applied() {
    let s = valid(&format!(
        "expect = \"clean\"\n{PUB}[[nodes]]\nname = \"sub\"\nkind = \"subscriber\"\nconnect = \"pub\"\n[[contexts]]\nname = \"aux\"\n[[steps]]\naction = \"close\"\nnode = \"sub\"\n[[steps]]\naction = \"term\"\ncontext = \"aux\"\n[[steps]]\naction = \"term\"\n"
    ));
    assert_eq!(s.name, "t");
    assert_eq!(s.name_position, None);
    assert_eq!(s.transport, Transport::Tcp);
    assert_eq!(s.step_timeout, Duration::from_secs(2));
    let labels: Vec<&str> = s.steps.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["close sub", "term aux", "term"]);
    let sub = s.nodes[1].endpoint().unwrap();
    assert_eq!(sub.mode, Mode::Blocking);
    assert_eq!(sub.subscribe, [""]);
    assert_eq!(sub.size, 64);
    assert_eq!(sub.poll_interval, Duration::from_millis(100));
    assert_eq!(
        sub.connect,
        Some(ConnectTarget::Node {
            node: 0,
            side: Side::Bind
        })
    );
    assert_eq!(s.nodes[1].on_eterm, OnEterm::Close);
    assert_eq!(s.contexts[1].max_sockets, None);
}

#[test]
fn a_written_name_keeps_its_position() {
    let s = valid("expect = \"clean\"\nname = \"async/case\"\n");
    assert_eq!(s.name, "async/case");
    assert_eq!(
        s.name_position,
        Some(crate::errors::Position { line: 2, column: 8 })
    );
}

#[test]
fn names_that_could_escape_or_forge_output_are_rejected() {
    rejected(
        "name = \"../../x\"\nexpect = \"clean\"\n",
        "1:8",
        "a scenario name must be",
    );
    rejected(
        "name = \"/x\"\nexpect = \"clean\"\n",
        "1:8",
        "starts with `/`",
    );
    rejected(
        "name = \"a\\u0007\"\nexpect = \"clean\"\n",
        "1:8",
        "control character '\\u{7}'",
    );
    rejected(
        "expect = \"clean\"\n[[nodes]]\nname = \"a b\"\nkind = \"publisher\"\nbind = \"auto\"\n",
        "3:8",
        "a node name must be",
    );
    rejected(
        "expect = \"clean\"\n[[contexts]]\nname = \"x\\n\"\n",
        "3:8",
        "a context name must be",
    );
    rejected(
        "expect = \"hang\"\nexpect_hang_at = \"hung\\u0007\"\n",
        "2:18",
        "a step label must be",
    );
    let from_path = parse_in(
        Path::new("t.toml"),
        "expect = \"clean\"\n",
        "odd\nname",
        &environment("/tmp"),
    )
    .unwrap_err();
    assert_eq!(from_path.len(), 1);
    assert_eq!(from_path[0].position, None);
    assert!(from_path[0].message.contains("give it a `name`"));
}

/// A node (or context, or step) with `field = value`, for the number tests.
fn with_number(field: &str, value: i128) -> String {
    match field {
        "io_threads" | "max_sockets" => {
            format!("expect = \"clean\"\n[[contexts]]\nname = \"main\"\n{field} = {value}\n")
        }
        "poll_ms" | "expect_messages" => format!(
            "expect = \"clean\"\n{PUB}[[nodes]]\nname = \"s\"\nkind = \"subscriber\"\nmode = \"poll\"\nconnect = \"pub\"\n{field} = {value}\n"
        ),
        "step linger_ms" => format!(
            "expect = \"clean\"\n{PUB}[[steps]]\naction = \"set_linger\"\nnode = \"pub\"\nlinger_ms = {value}\n"
        ),
        _ => format!("expect = \"clean\"\n{PUB}{field} = {value}\n"),
    }
}

#[test]
fn every_number_is_checked_against_its_range_at_both_ends() {
    for (field, b) in [
        ("io_threads", bounds::IO_THREADS),
        ("max_sockets", bounds::MAX_SOCKETS),
        ("linger_ms", bounds::LINGER_MS),
        ("step linger_ms", bounds::LINGER_MS),
        ("sndhwm", bounds::HWM),
        ("rcvhwm", bounds::HWM),
        ("messages", bounds::MESSAGES),
        ("expect_messages", bounds::MESSAGES),
        ("size", bounds::SIZE),
        ("rate", bounds::RATE),
        ("poll_ms", bounds::POLL_MS),
    ] {
        for ok in [b.min, b.max] {
            assert_eq!(
                errors(&with_number(field, ok)),
                Vec::<String>::new(),
                "{field} = {ok}"
            );
        }
        let name = field.trim_start_matches("step ");
        for bad in [b.min - 1, b.max + 1] {
            let errors = errors(&with_number(field, bad));
            assert_eq!(errors.len(), 1, "{field} = {bad}: {errors:?}");
            assert!(
                errors[0].ends_with(&format!("{name} must be {b}, not {bad}")),
                "{errors:?}"
            );
        }
    }
    rejected(
        &with_number("size", u64::MAX.into()),
        "6:8",
        "size must be from 1 to 67108864 bytes, not 18446744073709551615",
    );
}

#[test]
fn numbers_reach_the_scenario_as_written() {
    let s = valid(&format!(
        "expect = \"clean\"\n[[contexts]]\nname = \"main\"\nio_threads = 2\nmax_sockets = 2048\n{PUB}size = 67108864\nrate = 10\nlinger_ms = -1\nsndhwm = 0\n"
    ));
    assert_eq!(s.contexts[0].io_threads, Some(2));
    assert_eq!(s.contexts[0].max_sockets, Some(2048));
    let e = s.nodes[0].endpoint().unwrap();
    assert_eq!((e.size, e.rate), (64 << 20, Some(10)));
    assert_eq!(s.nodes[0].options.linger_ms, Some(-1));
    assert_eq!(s.nodes[0].options.sndhwm, Some(0));
}

#[test]
fn durations_are_between_a_millisecond_and_a_day() {
    for ok in ["1ms", "24h", "1day"] {
        let s = valid(&format!("expect = \"clean\"\nstep_timeout = \"{ok}\"\n"));
        assert!(s.step_timeout >= Duration::from_millis(1));
    }
    for (bad, message) in [
        ("0s", "step_timeout must be from 1ms to 1day, not 0s"),
        ("999us", "not 999us"),
        ("25h", "not 1day 1h"),
        ("99999999999999999999h", "invalid duration"),
        ("soon", "invalid duration \"soon\" for step_timeout"),
    ] {
        rejected(
            &format!("expect = \"clean\"\nstep_timeout = \"{bad}\"\n"),
            "2:16",
            message,
        );
    }
}

fn socket_with(field: &str, endpoint: &str) -> String {
    format!(
        "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"socket\"\ntype = \"PUSH\"\n{field} = \"{endpoint}\"\n"
    )
}

#[test]
fn endpoints_are_parsed_once_into_their_type() {
    let s = valid(&socket_with("connect", "tcp://[::1]:5555"));
    let Some(ConnectTarget::Explicit(Endpoint::Tcp { host, port })) =
        &s.nodes[0].endpoint().unwrap().connect
    else {
        panic!("{:?}", s.nodes[0]);
    };
    assert_eq!(*host, TcpHost::V6(std::net::Ipv6Addr::LOCALHOST));
    assert_eq!(port.to_string(), "5555");
    let s = valid(&socket_with("bind", "tcp://*:*"));
    assert_eq!(
        s.nodes[0].endpoint().unwrap().bind,
        Some(BindSpec::Explicit(Endpoint::Tcp {
            host: TcpHost::Any,
            port: TcpPort::Any
        }))
    );
    for (field, endpoint, message) in [
        ("connect", "tcp://127.0.0.1:99999", "port `99999`"),
        ("connect", "foo://bar", "unknown transport `foo://`"),
        ("bind", "tcp://garbage!!", "tcp://HOST:PORT"),
        ("bind", "ipc://", "ipc:// needs a name"),
        ("connect", "inproc://", "inproc:// needs a name"),
        ("connect", "tcp://127.0.0.1:*", "works only on a bind"),
        (
            "bind",
            "127.0.0.1:5",
            "bind must be \"auto\" or an endpoint",
        ),
    ] {
        let column = if field == "bind" { 8 } else { 11 };
        rejected(
            &socket_with(field, endpoint),
            &format!("6:{column}"),
            message,
        );
    }
    rejected(
        &socket_with("connect", &format!("ipc:///{}", "x".repeat(110))),
        "6:11",
        "111 bytes, longer than the kernel's limit of 107 bytes",
    );
}

const BUS: &str = "[[nodes]]\nname = \"bus\"\nkind = \"proxy\"\n";

#[test]
fn connects_resolve_to_nodes_and_proxy_sides() {
    let s = valid(&format!(
        "expect = \"clean\"\n{BUS}{PUB}[[nodes]]\nname = \"p2\"\nkind = \"publisher\"\nconnect = \"bus\"\n[[nodes]]\nname = \"x\"\nkind = \"socket\"\ntype = \"DEALER\"\nconnect = \"bus.backend\"\n"
    ));
    let connect = |i: usize| s.nodes[i].endpoint().unwrap().connect.clone();
    assert_eq!(
        connect(2),
        Some(ConnectTarget::Node {
            node: 0,
            side: Side::Proxy(ProxySide::Frontend)
        })
    );
    assert_eq!(
        connect(3),
        Some(ConnectTarget::Node {
            node: 0,
            side: Side::Proxy(ProxySide::Backend)
        })
    );
    let node = |connect: &str| {
        format!(
            "expect = \"clean\"\n{BUS}{PUB}[[nodes]]\nname = \"x\"\nkind = \"socket\"\ntype = \"DEALER\"\nconnect = \"{connect}\"\n"
        )
    };
    rejected(&node("bus"), "13:11", "say which side of proxy `bus`");
    rejected(&node("bus.middle"), "13:11", "not `middle`");
    rejected(&node("pub.frontend"), "13:11", "is not a proxy");
    rejected(&node("x"), "13:11", "cannot connect to itself");
    rejected(&node("ghost"), "13:11", "connect names no node `ghost`");
    rejected(
        "expect = \"clean\"\n[[nodes]]\nname = \"a\"\nkind = \"publisher\"\nconnect = \"tcp://127.0.0.1:1\"\n[[nodes]]\nname = \"b\"\nkind = \"subscriber\"\nconnect = \"a\"\n",
        "9:11",
        "binds nothing",
    );
}

#[test]
fn node_fields_follow_kind_type_and_mode() {
    rejected(
        &format!("expect = \"clean\"\n{BUS}topic = \"t\"\n"),
        "5:9",
        "field `topic` does not apply to a proxy node",
    );
    rejected(
        "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"socket\"\ntype = \"PUSH\"\nbind = \"auto\"\nmode = \"poll\"\n",
        "7:8",
        "cannot receive",
    );
    rejected(
        "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"socket\"\ntype = \"PULL\"\nbind = \"auto\"\nsend = 1\n",
        "7:8",
        "a PULL socket cannot send",
    );
    rejected(
        "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"socket\"\ntype = \"PAIR\"\nbind = \"auto\"\nnodrop = true\n",
        "7:10",
        "applies only to PUB and XPUB",
    );
    rejected(
        "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"subscriber\"\nmode = \"idle\"\nbind = \"auto\"\nexpect_messages = 1\n",
        "7:19",
        "nobody reads an idle socket",
    );
    rejected(
        "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"subscriber\"\nbind = \"auto\"\npoll_ms = 5\n",
        "6:11",
        "poll_ms applies only to mode = \"poll\"",
    );
    rejected(
        "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"socket\"\nbind = \"auto\"\n",
        "4:8",
        "needs `type`",
    );
    rejected(
        "expect = \"clean\"\n[[nodes]]\nname = \"s\"\nkind = \"subscriber\"\n",
        "3:8",
        "needs `bind` or `connect`",
    );
    rejected(
        &format!("expect = \"clean\"\n{PUB}{PUB}"),
        "7:8",
        "duplicate node name `pub`",
    );
}

fn step(body: &str) -> String {
    format!(
        "expect = \"clean\"\n{BUS}{PUB}[[nodes]]\nname = \"sub\"\nkind = \"subscriber\"\nmode = \"async\"\nconnect = \"bus\"\n[[steps]]\n{body}"
    )
}

#[test]
fn steps_take_their_own_fields_and_fitting_nodes() {
    let s = valid(&step(
        "action = \"cancel\"\nnode = \"sub\"\ntimeout = \"1s\"\nexpect_at_least = \"10ms\"\n",
    ));
    assert_eq!(s.steps[0].action, Action::Cancel { node: 2 });
    assert_eq!(s.steps[0].timeout, Duration::from_secs(1));
    assert_eq!(s.steps[0].expect_at_least, Some(Duration::from_millis(10)));
    rejected(
        &step("action = \"term\"\nnode = \"sub\"\n"),
        "16:8",
        "field `node` does not apply to a `term` step",
    );
    rejected(
        &step("action = \"cancel\"\nnode = \"pub\"\n"),
        "16:8",
        "applies only to async nodes",
    );
    rejected(
        &step("action = \"join\"\nnode = \"pub\"\n"),
        "16:8",
        "needs a node with a thread",
    );
    rejected(
        &step("action = \"steer\"\nnode = \"bus\"\ncommand = \"PAUSE\"\n"),
        "16:8",
        "engine = \"steerable\"",
    );
    rejected(
        &step("action = \"close\"\n"),
        "15:10",
        "a `close` step needs `node`",
    );
    rejected(
        &step("action = \"close\"\nnode = \"ghost\"\n"),
        "16:8",
        "no node named `ghost` (nodes: bus, pub, sub)",
    );
    rejected(
        &step("action = \"set_linger\"\nnode = \"pub\"\n"),
        "15:10",
        "needs `linger_ms`",
    );
    rejected(
        &step("action = \"sleep\"\nfor = \"2s\"\n"),
        "16:7",
        "would always hang",
    );
    rejected(
        &step("action = \"term\"\ntimeout = \"1s\"\nexpect_at_least = \"1s\"\n"),
        "17:19",
        "not shorter than the step's deadline",
    );
    let errors = errors(&step("action = \"steer\"\nnode = \"pub\"\n"));
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn expect_hang_at_names_exactly_one_step() {
    let text = |at: &str, expect: &str| {
        format!(
            "expect = \"{expect}\"\nexpect_hang_at = \"{at}\"\n[[steps]]\naction = \"term\"\n[[steps]]\naction = \"sleep\"\nfor = \"1ms\"\n[[steps]]\naction = \"sleep\"\nfor = \"1ms\"\n"
        )
    };
    valid(&text("term", "hang"));
    valid(&text("traffic", "hang"));
    rejected(&text("trem", "hang"), "2:18", "matches no step label");
    rejected(&text("sleep", "hang"), "2:18", "matches 2 steps");
    rejected(&text("term", "clean"), "2:18", "needs expect = \"hang\"");
}

/// `n` idle socket nodes in context `main`, monitored or not.
fn sockets(n: usize, context: &str, monitor: bool) -> String {
    let mut text = format!("expect = \"clean\"\nmonitor = {monitor}\n{context}");
    for i in 0..n {
        text.push_str(&format!(
            "[[nodes]]\nname = \"n{i}\"\nkind = \"socket\"\ntype = \"PAIR\"\nbind = \"auto\"\n"
        ));
    }
    text
}

#[test]
fn sockets_per_context_stay_within_its_limit() {
    assert_eq!(errors(&sockets(1023, "", false)), Vec::<String>::new());
    let over = errors(&sockets(1024, "", false));
    assert_eq!(over.len(), 1, "{over:?}");
    // Node n1023 starts on line 3 + 5 * 1023.
    assert!(
        over[0].starts_with(&format!(
            "{}:8: context `main` needs 1024 sockets, more than libzmq's default limit of 1023",
            3 + 5 * 1023 + 1
        )),
        "{over:?}"
    );
    assert!(over[0].contains("`max_sockets = 1024`"));
    let raised = "[[contexts]]\nname = \"main\"\nmax_sockets = 1024\n";
    assert_eq!(errors(&sockets(1024, raised, false)), Vec::<String>::new());
    // Monitored: each socket brings libzmq's monitor socket and the reader's.
    assert_eq!(errors(&sockets(341, "", true)), Vec::<String>::new());
    let over = errors(&sockets(342, "", true));
    assert!(over[0].contains("needs 1026 sockets"), "{over:?}");
    let lowered = "[[contexts]]\nname = \"main\"\nmax_sockets = 1\n";
    let over = errors(&sockets(2, lowered, false));
    assert!(
        over[0].contains("more than its `max_sockets` limit of 1"),
        "{over:?}"
    );
}

#[test]
fn socket_counts_follow_the_node_kind() {
    let s = valid(&format!(
        "expect = \"clean\"\n{BUS}[[nodes]]\nname = \"st\"\nkind = \"proxy\"\nengine = \"steerable\"\nmonitor = true\n{PUB}"
    ));
    let counts: Vec<usize> = s.nodes.iter().map(NodeSpec::socket_count).collect();
    assert_eq!(counts, [2, 12, 1]);
}

/// Two temporary directories in which `<dir>/tw-XXXXX.XXXXXXXX-XXXX/<file>` is 107 bytes (the
/// kernel's limit: it fits) and 108 bytes (too long).
fn temp_dirs_at_the_ipc_limit(file: &str) -> (String, String) {
    let tail = format!("/tw-XXXXX.XXXXXXXX-XXXX/{file}");
    let fits = format!("/{}", "d".repeat(107 - tail.len() - 1));
    let too_long = format!("{fits}d");
    (fits, too_long)
}

#[test]
fn automatic_ipc_paths_are_measured_in_the_temporary_directory() {
    let text = format!("expect = \"clean\"\ntransport = \"ipc\"\n{BUS}{PUB}");
    assert_eq!(errors_in(&text, "/tmp"), Vec::<String>::new());
    // `<dir>/tw-XXXXX.XXXXXXXX-XXXX/bus-frontend` is the longest path.
    let (fits, too_long) = temp_dirs_at_the_ipc_limit("bus-frontend");
    assert_eq!(errors_in(&text, &fits), Vec::<String>::new());
    let errors = errors_in(&text, &too_long);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "4:8: the automatic ipc endpoint of node `bus` would be {too_long}/tw-XXXXX.XXXXXXXX-XXXX/bus-frontend (108 bytes), longer than the kernel's limit of 107 bytes"
        )),
        "{errors:?}"
    );
    assert!(errors[0].contains(&format!("TMPDIR (now {too_long})")));
    // Other transports have no path.
    let tcp = text.replace("\"ipc\"", "\"tcp\"");
    assert_eq!(errors_in(&tcp, &too_long), Vec::<String>::new());
}

#[test]
fn the_format_documents_every_range() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/scenario-format.md"
    ))
    .expect("docs/scenario-format.md");
    for (field, b) in [
        ("io_threads", bounds::IO_THREADS),
        ("max_sockets", bounds::MAX_SOCKETS),
        ("linger_ms", bounds::LINGER_MS),
        ("sndhwm", bounds::HWM),
        ("messages", bounds::MESSAGES),
        ("expect_messages", bounds::MESSAGES),
        ("send", bounds::MESSAGES),
        ("size", bounds::SIZE),
        ("rate", bounds::RATE),
        ("poll_ms", bounds::POLL_MS),
    ] {
        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| `{field}`")))
            .unwrap_or_else(|| panic!("no row for `{field}`"));
        assert!(
            row.contains(&format!("integer {}–{}", b.min, b.max)),
            "`{field}`: {row}"
        );
    }
    assert!(docs.contains("from `1ms` to `1day`"));
    assert!(docs.contains("at most 107 bytes"));
}

#[test]
fn sockets_beyond_the_open_files_limit_are_refused_at_the_first_node_over_it() {
    let contexts =
        "[[contexts]]\nname = \"main\"\nio_threads = 2\n[[contexts]]\nname = \"unused\"\n";
    let text = sockets(20, contexts, false);
    let with_limit = |open_files| {
        let environment = Environment {
            temp_dir: PathBuf::from("/tmp"),
            open_files: Some(open_files),
        };
        parse_in(Path::new("t.toml"), &text, "t", &environment)
    };
    // stdio 3 + the context's 3 + 2 per I/O thread 4 + 20 sockets = 30; `unused` has no
    // socket, so libzmq never starts it.
    assert!(with_limit(30).is_ok());
    let errors = with_limit(29).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].position.map(|p| p.line), Some(8 + 5 * 19 + 1));
    assert!(
        errors[0]
            .message
            .starts_with("the scenario needs at least 30 file descriptors"),
        "{}",
        errors[0].message
    );
    assert!(errors[0].message.contains("(29, `ulimit -n`"));
}

// The rules of `exit`, `alarm`, `open`, `mode = "stream"`, REQ/REP sends, a proxy's
// `capture` and `connect = "<node>.monitor"`.

const PUB_SUB: &str = "[[nodes]]\nname = \"pub\"\nkind = \"publisher\"\nbind = \"auto\"\n[[nodes]]\nname = \"sub\"\nkind = \"subscriber\"\nmode = \"poll\"\nconnect = \"pub\"\n";

#[test]
fn exit_takes_a_node_with_a_thread_that_is_not_a_runtime() {
    let ok = valid(&format!(
        "expect = \"clean\"\n{PUB_SUB}[[steps]]\naction = \"exit\"\nnode = \"sub\"\n"
    ));
    assert_eq!(ok.steps[0].action, Action::Exit { node: 1 });
    assert_eq!(ok.steps[0].label, "exit sub");
    rejected(
        &format!("expect = \"clean\"\n{PUB_SUB}[[steps]]\naction = \"exit\"\nnode = \"pub\"\n"),
        "13:8",
        "needs a node with a thread of its own",
    );
    let async_sub = PUB_SUB.replace("\"poll\"", "\"async\"");
    rejected(
        &format!("expect = \"clean\"\n{async_sub}[[steps]]\naction = \"exit\"\nnode = \"sub\"\n"),
        "13:8",
        "stop_runtime",
    );
}

#[test]
fn alarm_needs_after_and_nothing_else_takes_it() {
    let ok = valid("expect = \"clean\"\n[[steps]]\naction = \"alarm\"\nafter = \"100ms\"\n");
    assert_eq!(
        ok.steps[0].action,
        Action::Alarm {
            after: Duration::from_millis(100)
        }
    );
    rejected(
        "expect = \"clean\"\n[[steps]]\naction = \"alarm\"\n",
        "3:10",
        "needs `after`",
    );
    rejected(
        "expect = \"clean\"\n[[steps]]\naction = \"term\"\nafter = \"1s\"\n",
        "4:9",
        "field `after` does not apply",
    );
}

#[test]
fn stream_is_for_types_that_send_and_reads_nothing() {
    let node = |t: &str, extra: &str| {
        format!(
            "expect = \"clean\"\n[[nodes]]\nname = \"n\"\nkind = \"socket\"\ntype = \"{t}\"\nbind = \"auto\"\nmode = \"stream\"\n{extra}"
        )
    };
    valid(&node("PUSH", "send = 3\n"));
    valid(&node("DEALER", ""));
    rejected(&node("PULL", ""), "7:8", "which a PULL socket cannot do");
    rejected(&node("REQ", ""), "7:8", "which a REQ socket cannot do");
    rejected(
        &node("DEALER", "expect_messages = 1\n"),
        "8:19",
        "nobody reads a stream socket",
    );
}

#[test]
fn req_and_rep_sends_follow_their_state_machine() {
    let node = |t: &str, mode: &str, send: u64| {
        format!(
            "expect = \"clean\"\n[[nodes]]\nname = \"n\"\nkind = \"socket\"\ntype = \"{t}\"\nbind = \"auto\"\nmode = \"{mode}\"\nsend = {send}\n"
        )
    };
    valid(&node("REQ", "blocking", 5));
    valid(&node("REQ", "idle", 1));
    rejected(&node("REQ", "idle", 2), "8:8", "at most 1");
    rejected(&node("REP", "blocking", 1), "8:8", "only replies");
}

#[test]
fn a_capture_socket_is_pub_dealer_push_or_pair_on_a_libzmq_proxy() {
    let proxy = |extra: &str| {
        format!("expect = \"clean\"\n[[nodes]]\nname = \"bus\"\nkind = \"proxy\"\n{extra}")
    };
    let ok = valid(
        &(proxy("capture = \"PAIR\"\n")
            + "[[nodes]]\nname = \"r\"\nkind = \"socket\"\ntype = \"PAIR\"\nconnect = \"bus.capture\"\n"),
    );
    assert!(matches!(
        ok.nodes[0].body,
        NodeBody::Proxy {
            capture: Some(SocketType::Pair),
            ..
        }
    ));
    assert_eq!(
        ok.nodes[1].endpoint().and_then(|e| e.connect.clone()),
        Some(ConnectTarget::Node {
            node: 0,
            side: Side::Proxy(ProxySide::Capture)
        })
    );
    rejected(&proxy("capture = \"SUB\"\n"), "5:11", "not SUB");
    rejected(
        &proxy("engine = \"forwarder\"\ncapture = \"PUSH\"\n"),
        "6:11",
        "the forwarder has no capture socket",
    );
    rejected(
        &(proxy("")
            + "[[nodes]]\nname = \"r\"\nkind = \"socket\"\ntype = \"PAIR\"\nconnect = \"bus.capture\"\n"),
        "9:11",
        "has no capture socket",
    );
}

#[test]
fn a_node_opened_by_a_step_has_one_open_step_before_anything_else() {
    let late = "[[nodes]]\nname = \"late\"\nkind = \"socket\"\ntype = \"DEALER\"\nconnect = \"tcp://127.0.0.1:1\"\nopen = \"step\"\n";
    let ok = valid(&format!(
        "expect = \"clean\"\n{late}[[steps]]\naction = \"open\"\nnode = \"late\"\n[[steps]]\naction = \"close\"\nnode = \"late\"\n"
    ));
    assert_eq!(ok.nodes[0].open, OpenAt::Step);
    assert_eq!(ok.steps[0].action, Action::Open { node: 0 });
    rejected(
        &format!("expect = \"clean\"\n{late}"),
        "7:8",
        "no `open` step names it",
    );
    rejected(
        &format!(
            "expect = \"clean\"\n{late}[[steps]]\naction = \"close\"\nnode = \"late\"\n[[steps]]\naction = \"open\"\nnode = \"late\"\n"
        ),
        "10:8",
        "no sockets before its `open` step (step 2)",
    );
    rejected(
        &format!("expect = \"clean\"\n{PUB_SUB}[[steps]]\naction = \"open\"\nnode = \"pub\"\n"),
        "13:8",
        "needs a node with open = \"step\"",
    );
    rejected(
        &format!(
            "expect = \"clean\"\n{late}send = 1\n[[steps]]\naction = \"open\"\nnode = \"late\"\n"
        ),
        "8:8",
        "does not apply to a node opened by a step",
    );
    let bound_late = late.replace("connect = \"tcp://127.0.0.1:1\"", "bind = \"auto\"");
    rejected(
        &format!(
            "expect = \"clean\"\n{bound_late}[[nodes]]\nname = \"d\"\nkind = \"socket\"\ntype = \"DEALER\"\nconnect = \"late\"\n[[steps]]\naction = \"open\"\nnode = \"late\"\n"
        ),
        "12:11",
        "give it an explicit `bind` endpoint",
    );
}

#[test]
fn a_monitor_is_read_by_one_pair_of_a_single_socket_node_without_termwatch_s_monitor() {
    let dealer = |extra: &str| {
        format!(
            "expect = \"clean\"\n[[nodes]]\nname = \"d\"\nkind = \"socket\"\ntype = \"DEALER\"\nbind = \"auto\"\n{extra}"
        )
    };
    let reader = |name: &str, t: &str| {
        format!(
            "[[nodes]]\nname = \"{name}\"\nkind = \"socket\"\ntype = \"{t}\"\nconnect = \"d.monitor\"\n"
        )
    };
    let ok = valid(&(dealer("") + &reader("m", "PAIR")));
    assert!(ok.monitor_is_read(0));
    assert_eq!(
        ok.nodes[1].endpoint().and_then(|e| e.connect.clone()),
        Some(ConnectTarget::Monitor { node: 0 })
    );
    rejected(
        &(dealer("") + &reader("m", "PULL")),
        "11:11",
        "read by a PAIR socket",
    );
    rejected(
        &(dealer("monitor = true\n") + &reader("m", "PAIR")),
        "12:11",
        "already watched by termwatch's monitor",
    );
    rejected(
        &(dealer("") + &reader("m", "PAIR") + &reader("n", "PAIR")),
        "16:11",
        "another node already reads",
    );
}

/// A program node `app` binding `binds`, with `command`, then `rest`.
fn program(binds: &str, command: &str, rest: &str) -> String {
    format!(
        "expect = \"clean\"\n[[nodes]]\nname = \"app\"\nkind = \"program\"\ncommand = {command}\nbinds = {binds}\n{rest}"
    )
}

#[test]
fn program_binds_are_unique_lowercase_identifiers() {
    let s = valid(&program("[\"frontend\", \"out_2\"]", "[\"x\"]", ""));
    let NodeBody::Program(p) = &s.nodes[0].body else {
        panic!("a program")
    };
    assert_eq!(p.binds, ["frontend", "out_2"]);
    rejected(
        &program("[\"in\", \"in\"]", "[\"x\"]", ""),
        "6:16",
        "duplicate bind name `in`",
    );
    rejected(
        &program("[\"Front\"]", "[\"x\"]", ""),
        "6:10",
        "a bind name must be a lowercase identifier: a letter a-z, then letters a-z, digits or `_`, at most 32 bytes: it starts with 'F'",
    );
    rejected(
        &program("[\"a-b\"]", "[\"x\"]", ""),
        "6:10",
        "it contains '-'",
    );
    rejected(
        &program("[\"monitor\"]", "[\"x\"]", ""),
        "6:10",
        "`monitor` cannot be a bind name",
    );
    let many: Vec<String> = (0..=super::programs::MAX_BINDS)
        .map(|i| format!("\"b{i}\""))
        .collect();
    rejected(
        &program(&format!("[{}]", many.join(", ")), "[\"x\"]", ""),
        "6:9",
        "a program binds at most 16 endpoints, not 17",
    );
    rejected(
        &format!("expect = \"clean\"\n{PUB}binds = [\"x\"]\n"),
        "6:9",
        "field `binds` does not apply to a publisher node",
    );
}

#[test]
fn placeholders_resolve_to_binds_proxy_sides_and_termwatch() {
    let s = valid(&program(
        "[\"frontend\", \"backend\"]",
        "[\"{termwatch}\", \"proxy\", \"--frontend={app.frontend}\", \"{app.backend}\", \"{{termwatch}}\"]",
        "",
    ));
    let NodeBody::Program(p) = &s.nodes[0].body else {
        panic!("a program")
    };
    let endpoint = |bind| CommandPart::Endpoint {
        node: 0,
        side: Side::Program(bind),
    };
    assert_eq!(
        p.command,
        [
            vec![CommandPart::Termwatch],
            vec![CommandPart::Text("proxy".into())],
            vec![CommandPart::Text("--frontend=".into()), endpoint(0)],
            vec![endpoint(1)],
            vec![CommandPart::Text("{termwatch}".into())],
        ]
    );
    let command = |arg: &str| program("[\"in\"]", &format!("[\"x\", \"{arg}\"]"), "");
    rejected(
        &command("{app}"),
        "5:11",
        "`{app}`: say which bind of program `app`: `app.in`",
    );
    rejected(
        &command("{app.out}"),
        "5:11",
        "`{app.out}`: program `app` has no bind `out` (its binds: `app.in`)",
    );
    rejected(
        &program("[]", "[\"x\", \"{app.in}\"]", ""),
        "5:11",
        "`{app.in}`: program `app` binds nothing termwatch knows of",
    );
    rejected(
        &program(
            "[\"in\"]",
            "[\"{termwatch}\"]",
            "[[nodes]]\nname = \"termwatch\"\nkind = \"program\"\ncommand = [\"x\"]\n",
        ),
        "5:11",
        "`{termwatch}` is termwatch's own executable, so node `termwatch` cannot be given to a program that way",
    );
}

#[test]
fn connects_reach_a_program_s_binds_by_name() {
    let with = |connect: &str| {
        program(
            "[\"frontend\", \"backend\"]",
            "[\"x\"]",
            &format!("[[nodes]]\nname = \"sub\"\nkind = \"subscriber\"\nconnect = \"{connect}\"\n"),
        )
    };
    let s = valid(&with("app.backend"));
    assert_eq!(
        s.nodes[1].endpoint().unwrap().connect,
        Some(ConnectTarget::Node {
            node: 0,
            side: Side::Program(1)
        })
    );
    rejected(
        &with("app"),
        "10:11",
        "say which bind of program `app`: `app.frontend`, `app.backend`",
    );
    rejected(
        &with("app.middle"),
        "10:11",
        "program `app` has no bind `middle`",
    );
    rejected(
        &with("app.monitor"),
        "10:11",
        "a monitor endpoint is read by a PAIR socket, not a SUB",
    );
    rejected(
        &program(
            "[]",
            "[\"x\"]",
            "[[nodes]]\nname = \"sub\"\nkind = \"subscriber\"\nconnect = \"app.in\"\n",
        ),
        "10:11",
        "program `app` binds nothing termwatch knows of",
    );
}

#[test]
fn program_binds_are_measured_in_the_temporary_directory_whatever_the_transport() {
    let text = program("[\"frontend\", \"longest_bind\"]", "[\"x\"]", "");
    let (fits, too_long) = temp_dirs_at_the_ipc_limit("app-longest_bind");
    assert_eq!(errors_in(&text, &fits), Vec::<String>::new());
    let errors = errors_in(&text, &too_long);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "6:9: the ipc endpoint of bind `longest_bind` of program `app` would be {too_long}/tw-XXXXX.XXXXXXXX-XXXX/app-longest_bind (108 bytes)"
        )) && errors[0].ends_with("shorten the node's name or the bind's"),
        "{errors:?}"
    );
}
