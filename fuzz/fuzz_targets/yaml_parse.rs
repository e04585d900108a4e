//! Arbitrary bytes (as UTF-8-lossy text) through the YAML front end (`yaml::lower`), the analysis
//! passes and the diagnostic renderer; an accepted file is printed back (`yaml::print`) and must read
//! back to the same IR. Nothing may panic and every diagnostic must be located inside the text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tailwall_compiler::diag::{render_all, Diagnostic, SourceFile};
use tailwall_compiler::{passes, yaml};

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
    let src = SourceFile::new("fuzz.yaml", text);
    match yaml::lower(&src) {
        Ok(l) => {
            located_inside(&l.diagnostics, &src);
            located_inside(&passes::run_all(&l.ruleset), &src);
            let printed = yaml::print(&l.ruleset, &yaml::Annotations::default());
            let back = yaml::lower(&SourceFile::new("printed.yaml", printed.clone()))
                .unwrap_or_else(|d| panic!("printed YAML does not read back: {d:?}\n{printed}"));
            assert_eq!(back.ruleset.dump(), l.ruleset.dump(), "\n{printed}");
        }
        Err(d) => {
            assert!(d.iter().any(Diagnostic::is_error));
            located_inside(&d, &src);
        }
    }
});
