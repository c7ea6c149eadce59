//! rkube's API server.
