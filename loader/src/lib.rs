//! tailwall loader library.
