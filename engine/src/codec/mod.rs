//! Codecs for timestamps and values (filled in by the codec work).
