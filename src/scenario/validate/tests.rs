//! Unit tests of validation: each rule on a small scenario, with the message and position.
