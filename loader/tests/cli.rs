//! CLI tier: the `tailwall` binary's text and JSON output (insta snapshots) and exit codes.
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use tailwall_compiler::packet::{build_frame, l4_header, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn tailwall(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tailwall"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tailwall-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

const M: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// Frames exercising every rule of demo.rules and every non-rule outcome.
fn demo_frames() -> Vec<Vec<u8>> {
    let lab = Ipv4Addr::new(10, 99, 0, 2);
    let host = Ipv4Addr::new(10, 99, 0, 1);
    let far = Ipv4Addr::new(198, 51, 100, 7);
    let tcp = |src, dport| {
        build_frame(
            M,
            M,
            src,
            host,
            IPPROTO_TCP,
            0,
            &l4_header(IPPROTO_TCP, 40000, dport, b""),
        )
    };
    let udp = |src, dport| {
        build_frame(
            M,
            M,
            src,
            host,
            IPPROTO_UDP,
            0,
            &l4_header(IPPROTO_UDP, 40000, dport, b"q"),
        )
    };
    let mut arp = tcp(lab, 80);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let mut bad_ihl = tcp(lab, 80);
    bad_ihl[14] = 0x44;
    vec![
        tcp(Ipv4Addr::new(192, 0, 2, 66), 80), // rule 1 drops the scanner
        build_frame(M, M, far, host, IPPROTO_ICMP, 0, &[8, 0, 0, 0, 0, 0, 0, 0]), // rule 2
        tcp(lab, 22),                          // rule 3
        tcp(far, 22),                          // policy (ssh only from the lab)
        tcp(far, 80),                          // rule 4
        tcp(far, 8099),                        // rule 5
        tcp(far, 8100),                        // policy
        tcp(lab, 23),                          // rule 6
        udp(far, 53),                          // rule 7
        udp(lab, 53),                          // rule 8
        build_frame(M, M, lab, host, IPPROTO_TCP, 0, &[0; 10]), // truncated tcp: hotdrop
        build_frame(M, M, lab, host, IPPROTO_TCP, 100, &[0; 16]), // later fragment: no ports, policy
        arp,                                                      // not ipv4: passes
        bad_ihl,                                                  // malformed: dropped
    ]
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let header = PcapHeader {
        datalink: pcap_file::DataLink::ETHERNET,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), header).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            std::time::Duration::from_millis(i as u64),
            f.len() as u32,
            f,
        ))
        .unwrap();
    }
}

fn kernel_available() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    if !root && std::env::var("TAILWALL_REQUIRE_KERNEL").as_deref() == Ok("1") {
        panic!("kernel tier required (TAILWALL_REQUIRE_KERNEL=1) but not running as root");
    }
    if !root {
        eprintln!("skipped: not root");
    }
    root
}

#[test]
fn compile_prints_plan_summary() {
    let r = tailwall(&["compile", "examples/rulesets/demo.rules"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn compile_json_has_schema_and_stages() {
    let r = tailwall(&["compile", "examples/rulesets/demo.rules", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["rules"], 8);
    assert_eq!(v["policy"], "DROP");
    assert_eq!(v["stages"].as_array().unwrap().len(), 3);
    assert_eq!(v["digest"].as_str().unwrap().len(), 64);
}

#[test]
fn compile_dump_ir_matches_snapshot() {
    let r = tailwall(&["compile", "examples/rulesets/demo.rules", "--dump", "ir"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn compile_unsupported_exits_3_with_located_errors() {
    let p = tmp("unsupported.rules");
    std::fs::write(
        &p,
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -i eth0 -j ACCEPT\n-A INPUT -p tcp --dport 22 -j NFQUEUE --queue-num 1\nCOMMIT\n",
    )
    .unwrap();
    let r = tailwall(&["compile", p.to_str().unwrap()]);
    assert_eq!(r.code, 3);
    assert!(r.stdout.is_empty());
    insta::assert_snapshot!(r.stderr.replace(p.to_str().unwrap(), "unsupported.rules"));
}

/// A host's ruleset as `iptables-save` prints it, with the interface matches real ones are full of
/// (`-i lo -j ACCEPT`, `! -i lo` anti-spoofing, `-i eth+`, Docker's `-i docker0 -o eth0` and
/// `br-+` bridges, `-o` at OUTPUT): it compiles (before interfaces reached the datapath every one
/// of these rules was a located `E0501`), with both interface stages and their name partitions.
#[test]
fn compile_accepts_interface_matches() {
    let p = tmp("host-ifaces.rules");
    std::fs::write(
        &p,
        "# Generated by iptables-save v1.8.9 on Tue Dec  1 02:00:00 2026\n\
         *filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n\
         -A INPUT -i lo -j ACCEPT\n\
         -A INPUT ! -i lo -s 127.0.0.0/8 -j DROP\n\
         -A INPUT -i eth+ -p tcp -m tcp --dport 22 -j ACCEPT\n\
         -A INPUT -i wg0 -p udp -m udp --dport 53 -j ACCEPT\n\
         -A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT\n\
         -A FORWARD -j DOCKER-USER\n\
         -A FORWARD -i docker0 -o eth0 -j ACCEPT\n\
         -A FORWARD -i br-+ ! -o br-+ -j ACCEPT\n\
         -A DOCKER-USER -i eth0 -o docker0 -p tcp -m tcp --dport 8080 -j ACCEPT\n\
         -A DOCKER-USER -j RETURN\n\
         -A OUTPUT -o lo -j ACCEPT\n\
         -A OUTPUT -o eth+ -p udp -m udp --dport 123 -j ACCEPT\n\
         COMMIT\n",
    )
    .unwrap();
    let path = p.to_str().unwrap();
    let r = tailwall(&["compile", path]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("E0501"), "{}", r.stderr);
    let stages = r.stdout.lines().find(|l| l.contains("stages:")).unwrap();
    assert!(
        stages.contains("in_iface") && stages.contains("out_iface"),
        "{stages}"
    );
    let r = tailwall(&["compile", path, "--dump", "tables"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The name partitions: `+` (every other name, and no device), each exact name, each prefix.
    for key in [
        "name + ->",
        "name lo ->",
        "name eth+ ->",
        "name wg0 ->",
        "name docker0 ->",
        "name br-+ ->",
        "name eth0 ->",
    ] {
        assert!(r.stdout.contains(key), "{key}:\n{}", r.stdout);
    }
    assert!(r.stdout.contains("map tw_t_in_iface Hash"), "{}", r.stdout);
}

#[test]
fn compile_syntax_error_exits_2() {
    let p = tmp("syntax.rules");
    std::fs::write(
        &p,
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -s \"10.0.0.1 -j ACCEPT\n",
    )
    .unwrap();
    let r = tailwall(&["compile", p.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("syntax.rules:3:"), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(tailwall(&["compile", "/nonexistent/rules"]).code, 2);
    assert_eq!(tailwall(&["frobnicate"]).code, 2);
    let r = tailwall(&[
        "replay",
        "examples/rulesets/demo.rules",
        "--pcap",
        "/nonexistent.pcap",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/nonexistent.pcap"), "{}", r.stderr);
    let not_pcap = tmp("not.pcap");
    std::fs::write(&not_pcap, b"hello world").unwrap();
    let r = tailwall(&[
        "replay",
        "examples/rulesets/demo.rules",
        "--pcap",
        not_pcap.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a pcap"), "{}", r.stderr);
    let r = tailwall(&[
        "replay",
        "examples/rulesets/demo.rules",
        "--pcap",
        not_pcap.to_str().unwrap(),
        "--repeat",
        "5",
    ]);
    assert_eq!(r.code, 2, "--repeat needs --engine kernel");
}

#[test]
fn replay_sim_json_matches_snapshot() {
    let pcap = tmp("demo.pcap");
    write_pcap(&pcap, &demo_frames());
    let r = tailwall(&[
        "replay",
        "examples/rulesets/demo.rules",
        "--pcap",
        pcap.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), demo_frames().len() + 1);
    let rules: Vec<_> = lines[..lines.len() - 1]
        .iter()
        .map(|l| l["rule"].as_u64())
        .collect();
    assert_eq!(
        rules,
        [
            Some(1),
            Some(2),
            Some(3),
            None,
            Some(4),
            Some(5),
            None,
            Some(6),
            Some(7),
            Some(8),
            None,
            None,
            None,
            None
        ]
    );
    insta::assert_snapshot!(r.stdout);
}

/// `replay -o json` names each frame's tuple and the deciding rule's source line; `--hook` picks the
/// region the frames are judged by (FORWARD's and OUTPUT's policies here, not INPUT's rules).
#[test]
fn replay_json_has_tuple_and_line_and_takes_the_hook() {
    let pcap = tmp("demo-hook.pcap");
    write_pcap(&pcap, &demo_frames());
    let p = pcap.to_str().unwrap();
    let rules = "examples/rulesets/demo.rules";
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rulesets/demo.rules"
    ))
    .unwrap();
    let rule_lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("-A INPUT"))
        .map(|(i, _)| i + 1)
        .collect();
    let r = tailwall(&[
        "replay", rules, "--pcap", p, "--hook", "input", "-o", "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let default = tailwall(&["replay", rules, "--pcap", p, "-o", "json"]);
    assert_eq!(r.stdout, default.stdout, "--hook input is the default");
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut checked = 0;
    for l in &lines[..lines.len() - 1] {
        match (l["reason"].as_str(), l["rule"].as_u64()) {
            (Some("rule"), Some(n)) => {
                assert_eq!(
                    l["line"].as_u64(),
                    Some(rule_lines[n as usize - 1] as u64),
                    "{l}"
                );
                checked += 1;
            }
            // A hotdrop counts no rule but names the line of the rule that dropped it.
            (Some("hotdrop"), None) => assert!(l["line"].is_u64(), "{l}"),
            _ => assert!(l["line"].is_null(), "{l}"),
        }
        match l["reason"].as_str() {
            Some("not_ipv4" | "malformed") => assert!(l["packet"].is_null(), "{l}"),
            _ => assert!(
                l["packet"]["src"].is_string() && l["packet"]["proto"].is_u64(),
                "{l}"
            ),
        }
    }
    assert!(checked >= 5);
    let first = &lines[0]["packet"];
    assert!(first["dport"].is_u64(), "{first}");
    // FORWARD and OUTPUT have no rules: every IPv4 frame is judged by that hook's policy (DROP,
    // ACCEPT), never by INPUT's rules.
    for (hook, chain, verdict) in [
        ("forward", "FORWARD", "drop"),
        ("output", "OUTPUT", "accept"),
    ] {
        let r = tailwall(&["replay", rules, "--pcap", p, "--hook", hook, "-o", "json"]);
        assert_eq!(r.code, 0, "{hook}: {}", r.stderr);
        let lines: Vec<serde_json::Value> = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut judged = 0;
        for l in &lines[..lines.len() - 1] {
            match l["reason"].as_str() {
                Some("not_ipv4" | "malformed") => assert!(l["chain"].is_null(), "{hook}: {l}"),
                _ => {
                    assert_eq!(
                        (
                            l["chain"].as_str(),
                            l["reason"].as_str(),
                            l["verdict"].as_str()
                        ),
                        (Some(chain), Some("policy"), Some(verdict)),
                        "{hook}: {l}"
                    );
                    judged += 1;
                }
            }
        }
        assert!(judged >= 5, "{hook}: {judged} frames judged");
    }
}

#[test]
fn replay_sim_text_matches_snapshot() {
    let pcap = tmp("demo-text.pcap");
    write_pcap(&pcap, &demo_frames());
    let r = tailwall(&[
        "replay",
        "examples/rulesets/demo.rules",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn replay_kernel_equals_sim() {
    if !kernel_available() {
        return;
    }
    let pcap = tmp("demo-kernel.pcap");
    write_pcap(&pcap, &demo_frames());
    let p = pcap.to_str().unwrap();
    let sim = tailwall(&[
        "replay",
        "examples/rulesets/demo.rules",
        "--pcap",
        p,
        "-o",
        "json",
    ]);
    let kernel = tailwall(&[
        "replay",
        "examples/rulesets/demo.rules",
        "--pcap",
        p,
        "-o",
        "json",
        "--engine",
        "kernel",
    ]);
    assert_eq!(kernel.code, 0, "{}", kernel.stderr);
    assert_eq!(sim.stdout, kernel.stdout);
    let timed = tailwall(&[
        "replay",
        "examples/rulesets/demo.rules",
        "--pcap",
        p,
        "-o",
        "json",
        "--engine",
        "kernel",
        "--repeat",
        "100",
    ]);
    assert_eq!(timed.code, 0, "{}", timed.stderr);
    let summary: serde_json::Value =
        serde_json::from_str(timed.stdout.lines().last().unwrap()).unwrap();
    assert!(
        summary["summary"]["ns_per_packet"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    // Interface matches: replayed frames carry no interface in every engine, although the kernel's
    // test-run frames arrive on `lo` (`Generation::load_nameless`): `-i lo` matches none of them,
    // `! -i eth0` and `-i +` all of them.
    let rules = tmp("ifaces-replay.rules");
    std::fs::write(
        &rules,
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i lo -j DROP\n-A INPUT -p udp -i + -j DROP\n\
         -A INPUT ! -i eth0 -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n",
    )
    .unwrap();
    let r = rules.to_str().unwrap();
    let sim = tailwall(&["replay", r, "--pcap", p, "-o", "json"]);
    let kernel = tailwall(&["replay", r, "--pcap", p, "-o", "json", "--engine", "kernel"]);
    assert_eq!(kernel.code, 0, "{}", kernel.stderr);
    assert_eq!(sim.stdout, kernel.stdout);
    assert!(
        sim.stdout.contains("\"drop\"") && sim.stdout.contains("\"accept\""),
        "{}",
        sim.stdout
    );
}

/// An ip6tables-save ruleset for the IPv6 side of demo.rules.
const DEMO_V6: &str = "# Generated by ip6tables-save v1.8.9
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -s 2001:db8:99::/48 -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 23 -j DROP
COMMIT
";

/// `compile RULES --v6 RULES6` builds one generation of both families (a line per ruleset); the
/// families are checked (exit 2 for a swapped or doubled family); a lone IPv6 ruleset compiles with
/// the N0502 note; `--attach` with `--v6` is refused for now (exit 3). `replay --v6` judges each frame
/// by its family's ruleset, naming the deciding rule's line in that file; without `--v6` the IPv6
/// frames pass as the other family.
#[test]
fn compile_and_replay_take_an_ipv6_ruleset() {
    use std::net::Ipv6Addr;
    use tailwall_compiler::packet::{build_frame_v6, ipv6_ext_header, IPPROTO_ICMPV6, NEXTHDR_HOP};
    let v4 = "examples/rulesets/demo.rules";
    let v6 = tmp("demo.rules6");
    std::fs::write(&v6, DEMO_V6).unwrap();
    let v6 = v6.to_str().unwrap();
    let r = tailwall(&["compile", v4, "--v6", v6]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("demo.rules: 8 rules in filter/INPUT"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "3 rules in filter/INPUT and the chains it reaches (4 positions), policy DROP (IPv6)"
        ),
        "{}",
        r.stdout
    );
    let j = tailwall(&["compile", v4, "--v6", v6, "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["families"][1]["family"], "ipv6");
    assert_eq!(doc["families"][1]["rules"], 3);
    for swapped in [[v6, "--v6", v4], [v4, "--v6", v4], [v6, "--v6", v6]] {
        let r = tailwall(&["compile", swapped[0], swapped[1], swapped[2]]);
        assert_eq!(r.code, 2, "{swapped:?}: {}", r.stderr);
        assert!(r.stderr.contains("E0503"), "{}", r.stderr);
    }
    let alone = tailwall(&["compile", v6]);
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    assert!(alone.stderr.contains("note[N0502]"), "{}", alone.stderr);
    let att = tailwall(&["compile", v4, "--v6", v6, "--attach", "lo"]);
    assert_eq!(att.code, 3, "{}", att.stderr);

    let host: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let lab: Ipv6Addr = "2001:db8:99::2".parse().unwrap();
    let far: Ipv6Addr = "2001:db8:77::2".parse().unwrap();
    let tcp6 = |src, dport| {
        build_frame_v6(
            M,
            M,
            src,
            host,
            IPPROTO_TCP,
            &l4_header(IPPROTO_TCP, 40000, dport, b""),
        )
    };
    let mut hop = ipv6_ext_header(NEXTHDR_HOP, IPPROTO_TCP, 0, false);
    hop.extend(l4_header(IPPROTO_TCP, 40000, 22, b""));
    let mut frames = vec![
        build_frame_v6(M, M, far, host, IPPROTO_ICMPV6, &[128, 0, 0, 0, 0, 0, 0, 0]), // v6 rule 1
        tcp6(lab, 22),                                                                // v6 rule 2
        build_frame_v6(M, M, lab, host, NEXTHDR_HOP, &hop), // v6 rule 2 behind hop-by-hop
        tcp6(far, 22),                                      // v6 policy
        tcp6(far, 23),                                      // v6 rule 3
    ];
    frames.extend(demo_frames().into_iter().take(3)); // v4 rules 1, 2, 3
    let pcap = tmp("both.pcap");
    write_pcap(&pcap, &frames);
    let p = pcap.to_str().unwrap();
    let mut engines = vec!["sim"];
    if kernel_available() {
        engines.push("kernel");
    }
    for engine in engines {
        let r = tailwall(&[
            "replay", v4, "--v6", v6, "--pcap", p, "--engine", engine, "-o", "json",
        ]);
        assert_eq!(r.code, 0, "{engine}: {}", r.stderr);
        let lines: Vec<serde_json::Value> = r
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got: Vec<_> = lines[..frames.len()]
            .iter()
            .map(|l| {
                (
                    l["verdict"].as_str().unwrap().to_string(),
                    l["rule"].as_u64(),
                    l["line"].as_u64(),
                )
            })
            .collect();
        let s = |v: &str| v.to_string();
        assert_eq!(
            got,
            [
                (s("accept"), Some(1), Some(6)),
                (s("accept"), Some(2), Some(7)),
                (s("accept"), Some(2), Some(7)),
                (s("drop"), None, None),
                (s("drop"), Some(3), Some(8)),
                (s("drop"), Some(1), Some(8)),
                (s("accept"), Some(2), Some(9)),
                (s("accept"), Some(3), Some(10)),
            ],
            "{engine}"
        );
        // Without --v6 the IPv6 frames pass as the other family.
        let r = tailwall(&["replay", v4, "--pcap", p, "--engine", engine, "-o", "json"]);
        assert_eq!(r.code, 0, "{engine}: {}", r.stderr);
        let reasons: Vec<String> = r
            .stdout
            .lines()
            .take(5)
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(reasons, vec!["other_family"; 5], "{engine}");
    }
}
