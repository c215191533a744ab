//! tickwire wire protocol (sans-IO).
