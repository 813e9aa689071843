//! Ethereum (issue #8, in progress): decoding of JSON-RPC replies into exact rows. The
//! ingest over a node (`chaintrace ingest ethereum`) is not built yet.

pub mod decode;
