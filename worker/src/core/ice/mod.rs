//! ICE-lite: STUN binding checks with short-term credentials, tuples and consent.
