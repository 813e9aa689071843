//! Ethereum (issue #8, in progress): decoding of JSON-RPC replies into exact rows, and the
//! ingest from a node (`chaintrace ingest ethereum`).

pub mod check;
pub mod decode;
pub mod ingest;
