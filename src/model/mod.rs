//! The intent model: a BERT encoder with a sequence-classification head, stored in the
//! Hugging Face layout (`config.json`, `model.safetensors`, `tokenizer.json`).

mod backend;
mod bert;
mod classifier;
mod config;
mod cpu;
mod device;
mod embedder;
mod error;
#[cfg(target_arch = "x86_64")]
mod int8;
mod kernels;
mod load;
mod tokenize;
mod wordpiece;

pub use backend::{Classify, ModelHandle, Models};
pub use bert::{BertEncoder, Pass};
pub use classifier::{decide, Classifier, SequenceClassifier};
pub use config::{BertConfig, ParleySettings, Pooling, DEFAULT_OOS_LABEL};
pub use cpu::{gemm_gflops, gemm_library, init_cpu_backend};
pub use device::{parse_device, DeviceSpec};
pub use embedder::{Embedder, EMBED_MAX_TOKENS};
pub use error::ModelError;
#[cfg(target_arch = "x86_64")]
pub use int8::int8_gmacs;
pub use kernels::{cpu_kernels, set_cpu_kernels, CpuKernels};
pub use load::{load_weights, ModelFiles};
pub use tokenize::{Encoded, TextEncoder};
