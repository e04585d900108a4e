//! Printing typed rules back in iptables-save's canonical form: `-A CHAIN`, then `-s -d -i -o -p -f`, the
//! matches in the order they were loaded (each module's own `save`), the target and its options.
//!
//! Guarantees: what [`super::rule::type_rule`] accepted prints to a line that types again to the same rule
//! and prints identically (a fixed point, tested in `rule.rs`). Comment bytes that were not UTF-8 in the
//! source come back as the same bytes when the printed text is written with
//! [`crate::diag::SourceFile::encode`].
use super::ext;
use super::rule::{Module, Target, TypedRule};
use super::token::Token;
use super::values::{fmt_addr, proto_save_name};

/// Print free text the way iptables-save prints module arguments it keeps verbatim.
fn raw_arg(out: &mut String, t: &Token) {
    out.push(' ');
    if t.text.is_empty() || t.text.contains([' ', '\t', '"', '\\']) {
        let mut s = String::new();
        ext::save_string(&mut s, &t.text);
        out.push_str(s.trim_start());
    } else {
        out.push_str(&t.text);
    }
}

/// The rule as iptables-save prints it: `-A CHAIN` then `-s -d -i -o -p -f`, the matches in order, the
/// target.
pub fn save_rule(chain: &str, r: &TypedRule) -> String {
    let mut out = format!("-A {chain}");
    for (flag, a) in [("-s", &r.src), ("-d", &r.dst)] {
        if let Some(a) = a {
            if !a.value.is_any() || a.negated {
                if a.negated {
                    out.push_str(" !");
                }
                out.push_str(&format!(" {flag} {}", fmt_addr(&a.value)));
            }
        }
    }
    for (flag, i) in [("-i", &r.in_iface), ("-o", &r.out_iface)] {
        if let Some(i) = i {
            if i.value != "+" || i.negated {
                if i.negated {
                    out.push_str(" !");
                }
                out.push_str(&format!(" {flag} {}", i.value));
            }
        }
    }
    if let Some(p) = &r.proto {
        if p.value != 0 {
            if p.negated {
                out.push_str(" !");
            }
            out.push_str(&format!(" -p {}", proto_save_name(p.value)));
        }
    }
    if let Some(f) = &r.fragment {
        if f.negated {
            out.push_str(" !");
        }
        out.push_str(" -f");
    }
    for m in &r.matches {
        out.push_str(" -m ");
        out.push_str(m.name());
        match m {
            Module::Typed(i) => (i.ext.save)(i, &mut out),
            Module::Generic { args, .. } => args.iter().for_each(|a| raw_arg(&mut out, a)),
        }
    }
    match r.target.as_ref().map(|t| &t.0) {
        None => {}
        Some(Target::Verdict(v) | Target::Jump(v)) => out.push_str(&format!(" -j {v}")),
        Some(Target::Goto(c)) => out.push_str(&format!(" -g {c}")),
        Some(Target::Ext(i)) => {
            out.push_str(&format!(" -j {}", i.ext.name));
            (i.ext.save)(i, &mut out);
        }
        Some(Target::Generic { name, args }) => {
            out.push_str(&format!(" -j {name}"));
            args.iter().for_each(|a| raw_arg(&mut out, a));
        }
    }
    out
}
