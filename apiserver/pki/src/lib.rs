//! rkube-pki
