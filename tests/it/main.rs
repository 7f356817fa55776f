//! Integration tests of the mvb kernel, by topic.

mod common;

mod builtins;
mod check;
mod cli;
mod medmnist;
mod parity;
mod sandbox;
mod template;
