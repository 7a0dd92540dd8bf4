//! Placeholder until this function is built.
