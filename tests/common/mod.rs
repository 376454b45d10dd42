//! Helpers shared by the integration tests (each test file is its own crate and includes this
//! with `mod common;`; a directory module so Cargo does not build it as a test of its own).

pub mod ovs;
