//! tickwire server framework.
