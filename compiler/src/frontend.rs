//! Front-end selection: one entry point that reads a ruleset file in either input format.
//!
//! Guarantees: a name ending in `.yaml` or `.yml` (any case) is read as the YAML rule language
//! ([`crate::yaml::lower()`]), anything else as an iptables-save / iptables-restore file
//! ([`crate::lower::iptables`]); both return the same [`Lowered`] shape and report all their
//! diagnostics at once. Nothing is thrown away here.
use crate::diag::{Diagnostic, SourceFile};
use crate::lower::Lowered;

/// The largest rules file tailwall reads, in bytes (64 MiB): ten times a 100,000-rule iptables-save dump
/// (about 6 MB), far beyond what the datapath takes. Checked while reading, so `check /dev/zero` stops
/// after 64 MiB instead of exhausting memory.
pub const MAX_INPUT_BYTES: u64 = 64 << 20;

/// Read a rules file (or anything readable: a pipe, a device) of at most [`MAX_INPUT_BYTES`], losslessly
/// ([`SourceFile::from_bytes`]). The error is a sentence for the user.
///
/// # Errors
/// The file cannot be opened or read (the OS error, with the path), or it is larger than
/// [`MAX_INPUT_BYTES`].
pub fn read_file(path: &std::path::Path) -> Result<SourceFile, String> {
    use std::io::Read as _;
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "{}: larger than {} MiB, the most tailwall reads (frontend::MAX_INPUT_BYTES)",
            path.display(),
            MAX_INPUT_BYTES >> 20
        ));
    }
    Ok(SourceFile::from_bytes(path.display().to_string(), &bytes))
}

/// The input formats tailwall reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An iptables-save / ip6tables-save dump, or an iptables-restore input.
    IptablesSave,
    /// tailwall's YAML rule language (docs/yaml.md).
    Yaml,
}

impl Format {
    /// The format of a file, by its name's extension.
    pub fn of(name: &str) -> Format {
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("yaml" | "yml") => Format::Yaml,
            _ => Format::IptablesSave,
        }
    }
}

/// Does `d` make the input invalid (exit code 2), rather than valid input tailwall cannot handle yet
/// (exit code 3)? Invalid: what `iptables-restore` refuses too — syntax (`E01xx`) and meaning
/// (`E03xx`: bad addresses, ports, jumps to missing chains, loops) — and an invalid YAML document
/// (`E04xx`). Not invalid: "not supported yet" (`E02xx`, and `E0418`, the unsupported rule `migrate`
/// kept) and the datapath's limits (`E05xx`). The same for both formats: the codes are shared.
pub fn is_invalid_input(d: &Diagnostic) -> bool {
    d.is_error()
        && (d.code.starts_with("E01")
            || d.code.starts_with("E03")
            || (d.code.starts_with("E04") && d.code != "E0418"))
}

/// Parse and lower a ruleset file of either family (an ip6tables-save file, or YAML `family: ipv6`, is
/// an IPv6 ruleset), choosing the format by [`SourceFile::name`]'s extension. Whether the datapath can
/// enforce it is `artifact::build`'s question.
///
/// # Errors
/// Every diagnostic of the front end (at least one error) when the file does not lower.
pub fn load(src: &SourceFile) -> Result<Lowered, Vec<Diagnostic>> {
    load_as(src, Format::of(&src.name))
}

/// [`load`] in a given format (`--format`, or stdin).
///
/// # Errors
/// As [`load`].
pub fn load_as(src: &SourceFile, format: Format) -> Result<Lowered, Vec<Diagnostic>> {
    match format {
        Format::Yaml => crate::yaml::lower(src),
        Format::IptablesSave => crate::lower::iptables(src),
    }
}

/// Parse and lower a ruleset file in either language, whatever its family (what `migrate` reads back):
/// the same as [`load`].
///
/// # Errors
/// As [`load`].
pub fn read(src: &SourceFile) -> Result<Lowered, Vec<Diagnostic>> {
    load(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(Format::of("fw.yaml"), Format::Yaml);
        assert_eq!(Format::of("dir.v2/FW.YML"), Format::Yaml);
        assert_eq!(Format::of("fw.rules"), Format::IptablesSave);
        assert_eq!(Format::of("-"), Format::IptablesSave);
        assert_eq!(Format::of("yaml"), Format::IptablesSave);
    }

    #[test]
    fn load_reads_both_formats() {
        let y = SourceFile::new("a.yaml", "chains:\n  input:\n    policy: drop\n    rules:\n      - {proto: tcp, dst_port: 22, action: accept}\n");
        let i = SourceFile::new(
            "a.rules",
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
        );
        let (y, i) = (load(&y).unwrap(), load(&i).unwrap());
        assert_eq!(y.ruleset.dump(), i.ruleset.dump());
    }
}
