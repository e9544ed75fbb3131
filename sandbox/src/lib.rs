//! The sandbox's building blocks, shared by its binary and the operator's end-to-end tests:
//! both emulators with the example setup applied ([`env`]), the `kubectl get hkt` table
//! ([`table`]) and the scale benchmark ([`bench`]).

pub mod bench;
pub mod env;
pub mod table;
