//! Integration tests of the mvb kernel, by topic.

mod common;

mod blip2;
mod bootstrap;
mod boundary;
mod builtins;
mod check;
mod cli;
mod cuda;
mod datasets;
mod decoder;
mod demo_vlm;
mod fuzz;
mod gguf;
mod grad;
mod judge;
mod llava;
mod lora_run;
mod lora_train;
mod medclip;
mod medmnist;
mod medsiglip;
mod metrics;
mod open_clip;
mod ops;
mod parity;
mod run;
mod sandbox;
mod shards;
mod swin;
mod template;
mod ten_datasets;
mod tokenize;
mod torch_bin;
mod vqa_run;
mod zeroshot;
