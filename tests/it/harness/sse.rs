//! A server-sent-events reader over a streaming HTTP response.

use super::within;

/// Reads SSE frames from a streaming response.
pub struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    pub async fn open(client: &reqwest::Client, url: &str) -> Sse {
        let resp = client.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Sse {
            resp,
            buf: String::new(),
        }
    }

    /// The next event as (name, JSON).
    pub async fn next(&mut self) -> (String, serde_json::Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                if frame.starts_with(':') {
                    continue; // keep-alive
                }
                let mut name = String::new();
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = v.to_string();
                    }
                }
                return (name, serde_json::from_str(&data).unwrap());
            }
            let chunk = within("an event", self.resp.chunk())
                .await
                .unwrap()
                .expect("stream open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next chunk off the wire as it came (also kept for [`Sse::next`]); `None` once the
    /// server closed the stream.
    pub async fn raw_chunk(&mut self) -> Option<String> {
        let chunk = self.resp.chunk().await.ok()??;
        let text = String::from_utf8_lossy(&chunk).into_owned();
        self.buf.push_str(&text);
        Some(text)
    }

    /// Skips events until one named `name` satisfies `f`.
    pub async fn until(
        &mut self,
        name: &str,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        loop {
            let (n, v) = self.next().await;
            if n == name && f(&v) {
                return v;
            }
        }
    }
}
