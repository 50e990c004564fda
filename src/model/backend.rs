//! The model runs on a thread of its own; async code reaches it through a cheap, cloneable
//! handle over a bounded channel, so inference never blocks the async runtime.

use tokio::sync::{mpsc, oneshot};

use super::{Classifier, Embedder, ModelError};
use crate::wire::Prediction;

/// The small synchronous interface the backend thread drives. The real implementation is
/// [`Classifier`]; tests of the stream layers may supply a fake.
pub trait Classify: Send + 'static {
    fn classify_batch(&mut self, texts: &[String]) -> Result<Vec<Prediction>, ModelError>;

    /// Sentence embeddings for retrieval; a model without an encoder for them says so.
    fn embed_batch(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        let _ = texts;
        Err(ModelError::Input(
            "this model thread has no sentence encoder".into(),
        ))
    }
}

impl Classify for Classifier {
    fn classify_batch(&mut self, texts: &[String]) -> Result<Vec<Prediction>, ModelError> {
        self.classify(texts)
    }
}

/// The intent classifier and the retrieval encoder, on one thread: the two never run at
/// once, so each forward pass has both cores.
pub struct Models {
    pub classifier: Classifier,
    pub embedder: Embedder,
}

impl Classify for Models {
    fn classify_batch(&mut self, texts: &[String]) -> Result<Vec<Prediction>, ModelError> {
        self.classifier.classify(texts)
    }

    fn embed_batch(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.embedder.embed(texts)
    }
}

enum Output {
    Predictions(Vec<Prediction>),
    Vectors(Vec<Vec<f32>>),
}

struct Job {
    texts: Vec<String>,
    embed: bool,
    reply: oneshot::Sender<Result<Output, ModelError>>,
}

/// Handle to the model thread. Cloning is cheap; the thread stops when every handle is gone.
#[derive(Clone)]
pub struct ModelHandle {
    jobs: mpsc::Sender<Job>,
}

impl ModelHandle {
    /// Starts the model thread. `queue` bounds the batches waiting for it: a caller that finds
    /// the queue full waits, which is how backpressure reaches the producers of work.
    pub fn spawn<M: Classify>(mut model: M, queue: usize) -> std::io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Job>(queue.max(1));
        std::thread::Builder::new()
            .name("parley-model".into())
            .spawn(move || {
                while let Some(job) = rx.blocking_recv() {
                    // A text that makes the tokenizer or the forward pass panic must not take
                    // the thread (and so the service) down: it fails this batch only.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        if job.embed {
                            model.embed_batch(&job.texts).map(Output::Vectors)
                        } else {
                            model.classify_batch(&job.texts).map(Output::Predictions)
                        }
                    }))
                    .unwrap_or_else(|panic| {
                        Err(ModelError::Panicked(crate::telemetry::panic_message(
                            &*panic,
                        )))
                    });
                    // The caller may have gone away; its result is then simply dropped.
                    let _ = job.reply.send(result);
                }
            })?;
        Ok(Self { jobs: tx })
    }

    /// Classifies `texts` in one forward pass on the model thread; results keep input order.
    pub async fn classify(&self, texts: Vec<String>) -> Result<Vec<Prediction>, ModelError> {
        match self.run(texts, false).await? {
            Output::Predictions(p) => Ok(p),
            Output::Vectors(_) => Err(ModelError::BackendStopped),
        }
    }

    /// Embeds `texts` for retrieval in one forward pass of the encoder.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ModelError> {
        match self.run(texts, true).await? {
            Output::Vectors(v) => Ok(v),
            Output::Predictions(_) => Err(ModelError::BackendStopped),
        }
    }

    async fn run(&self, texts: Vec<String>, embed: bool) -> Result<Output, ModelError> {
        if texts.is_empty() {
            return Ok(if embed {
                Output::Vectors(Vec::new())
            } else {
                Output::Predictions(Vec::new())
            });
        }
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job {
                texts,
                embed,
                reply,
            })
            .await
            .map_err(|_| ModelError::BackendStopped)?;
        rx.await.map_err(|_| ModelError::BackendStopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels each text by its length, so order and batching are visible.
    struct LengthModel;

    impl Classify for LengthModel {
        fn classify_batch(&mut self, texts: &[String]) -> Result<Vec<Prediction>, ModelError> {
            Ok(texts
                .iter()
                .map(|t| Prediction {
                    intent: format!("len{}", t.len()),
                    confidence: 1.0,
                    top: vec![],
                })
                .collect())
        }
    }

    /// Panics on a text saying so, like a model bug triggered by one input.
    struct Fragile;

    impl Classify for Fragile {
        fn classify_batch(&mut self, texts: &[String]) -> Result<Vec<Prediction>, ModelError> {
            assert!(!texts.iter().any(|t| t == "boom"), "boom");
            LengthModel.classify_batch(texts)
        }
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_alone_and_the_thread_goes_on() {
        let handle = ModelHandle::spawn(Fragile, 1).unwrap();
        let e = handle
            .classify(vec!["ok".into(), "boom".into()])
            .await
            .unwrap_err();
        assert!(
            matches!(e, ModelError::Panicked(ref m) if m == "boom"),
            "{e}"
        );
        let p = handle.classify(vec!["fine".into()]).await.unwrap();
        assert_eq!(p[0].intent, "len4");
    }

    #[tokio::test]
    async fn handle_returns_results_in_order_from_many_callers() {
        let handle = ModelHandle::spawn(LengthModel, 2).unwrap();
        let mut tasks = Vec::new();
        for i in 1..20usize {
            let h = handle.clone();
            tasks.push(tokio::spawn(async move {
                let texts = vec!["x".repeat(i), "y".repeat(i + 1)];
                (i, h.classify(texts).await.unwrap())
            }));
        }
        for t in tasks {
            let (i, preds) = t.await.unwrap();
            assert_eq!(preds[0].intent, format!("len{i}"));
            assert_eq!(preds[1].intent, format!("len{}", i + 1));
        }
    }
}
