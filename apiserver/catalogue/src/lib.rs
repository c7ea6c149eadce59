//! rkube-catalogue
