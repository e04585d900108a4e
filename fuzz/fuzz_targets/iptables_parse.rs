//! Arbitrary bytes (as UTF-8-lossy text) through the iptables-save front end: `lower::iptables`, then
//! `lower::migrate`, the analysis passes and the diagnostic renderer. Nothing may panic, every error
//! must be located inside the text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tailwall_compiler::diag::{render_all, Diagnostic, SourceFile};
use tailwall_compiler::{lower, passes};

fn located_inside(diags: &[Diagnostic], src: &SourceFile) {
    for d in diags {
        if let Some(s) = d.span {
            assert!(
                s.start <= s.end && s.end as usize <= src.text.len(),
                "{d:?} outside the text ({} bytes)",
                src.text.len()
            );
        }
    }
    let _ = render_all(diags, src);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let src = SourceFile::new("fuzz.rules", text);
    match lower::iptables(&src) {
        Ok(l) => {
            located_inside(&l.diagnostics, &src);
            let d = passes::run_all(&l.ruleset);
            located_inside(&d, &src);
        }
        Err(d) => {
            assert!(d.iter().any(Diagnostic::is_error));
            located_inside(&d, &src);
        }
    }
    match lower::migrate(&src) {
        Ok(m) => {
            located_inside(&m.diagnostics, &src);
            let d = passes::run_all(&m.ruleset);
            located_inside(&d, &src);
        }
        Err(d) => {
            assert!(d.iter().any(Diagnostic::is_error));
            located_inside(&d, &src);
        }
    }
});
