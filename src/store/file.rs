//! Embedded file store (redb).
