//! Tally's command-line tools.
//!
//! [`dump`] is `tally-dump`, the backup, restore, verify, export and import tool.
//! [`shell`] is `tally`, the interactive query shell: it sends queries to `tallyd` over HTTP and
//! prints the answers. The binaries in `src/bin/` only parse their arguments and call in here,
//! so everything they do can be tested as a library.
#![forbid(unsafe_code)]

pub mod dump;
pub mod shell;
