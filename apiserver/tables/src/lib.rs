//! rkube-tables
