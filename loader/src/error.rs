//! The loader's one error type.
use std::{io, path::PathBuf};

/// Everything that can go wrong loading, test-running, attaching, swapping or detaching a generation.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("artifact speaks abi version {found}, this loader speaks {expected}")]
    AbiVersion { found: u32, expected: u32 },
    #[error("artifact is inconsistent: {0}")]
    Artifact(String),
    #[error("cannot parse the embedded ebpf object")]
    Object(#[source] Box<aya::EbpfError>),
    #[error("the verifier rejected {program}: {source}\nverifier log:\n{log}")]
    Verifier {
        program: &'static str,
        log: String,
        #[source]
        source: io::Error,
    },
    #[error("program {program}: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("{op} failed")]
    Sys {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "a frame of {0} bytes is shorter than an ethernet header; the kernel's test-run rejects it"
    )]
    FrameTooShort(usize),
    #[error("self-test failed before going live: {0}")]
    SelfTest(String),
    #[error("interface {0} does not exist")]
    UnknownInterface(String),
    #[error("interface {iface} is busy: another tailwall is applying a ruleset to it (lock {})", path.display())]
    Busy { iface: String, path: PathBuf },
    #[error("{iface} is attached in {attached} mode, {requested} was asked: the mode cannot change under a live link, detach first")]
    ModeChange {
        iface: String,
        attached: crate::iface::Mode,
        requested: crate::iface::Mode,
    },
    #[error("no tailwall classifier is attached to {0}")]
    NotAttached(String),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state file {} is unreadable: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("pinning at {}: {source}", path.display())]
    Pin {
        path: PathBuf,
        #[source]
        source: Box<aya::pin::PinError>,
    },
    #[error("xdp link on {iface}: {source}")]
    Link {
        iface: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot enter network namespace {name}: {source}")]
    Netns {
        name: String,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn sys(op: &'static str) -> impl FnOnce(io::Error) -> LoadError {
    move |source| LoadError::Sys { op, source }
}

pub(crate) fn map_err(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> LoadError {
    move |source| LoadError::Map {
        map,
        source: Box::new(source),
    }
}

pub(crate) fn prog_err(
    program: &'static str,
) -> impl FnOnce(aya::programs::ProgramError) -> LoadError {
    move |source| LoadError::Program {
        program,
        source: Box::new(source),
    }
}

pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LoadError {
    let path = path.into();
    move |source| LoadError::File { path, source }
}

// Callers wrap it in `anyhow` and send it across threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<LoadError>();
};
