//! rkube-selectors
