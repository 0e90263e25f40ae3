//! Simulated viewers (being written).
