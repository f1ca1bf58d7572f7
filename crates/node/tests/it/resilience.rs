//! A worker killed after committing comes back and reveals; an RPC outage delays prompts but
//! does not lose them.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use aik_infer::{LlamaGgufDriver, Message, ModelDriver, Output, Request};
use aik_kernel::{
    OutputFormat, PromptStatus, WorkerStatus, bindings::DecentralizedInference as DI,
};
use aik_node::Engine;
use alloy::primitives::U256;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::e2e::{Network, llama, request};

/// The real model, answering only after a pause: a slow but honest worker.
struct Slow(Arc<LlamaGgufDriver>, Duration);

impl ModelDriver for Slow {
    fn version(&self) -> &'static str {
        LlamaGgufDriver::VERSION
    }

    fn prompt_token_count(&self, messages: &[Message]) -> aik_infer::Result<usize> {
        self.0.prompt_token_count(messages)
    }

    fn context_length(&self) -> usize {
        self.0.context_length()
    }

    fn run(&self, request: &Request) -> aik_infer::Result<Output> {
        std::thread::sleep(self.1);
        self.0.run(request)
    }
}

/// An engine of its own (not sharing the run gate), so a slow worker does not hold up others.
fn own_engine(driver: Arc<dyn ModelDriver + Send + Sync>) -> Engine {
    Engine::new(driver)
}

async fn wait_final(net: &Network, id: U256, limit: Duration) -> PromptStatus {
    let started = Instant::now();
    loop {
        let (status, _, _) = net.requester.result(id).await.unwrap();
        if matches!(status, PromptStatus::Finalized | PromptStatus::Refunded) {
            eprintln!("prompt {id} {status:?} after {:.1} s", started.elapsed().as_secs_f64());
            return status;
        }
        assert!(started.elapsed() < limit, "prompt {id} still {status:?} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_committing_reveals_after_restart() {
    let slow = Duration::from_secs(3);
    let engines = vec![
        own_engine(llama()),
        own_engine(Arc::new(Slow(llama(), slow))),
        own_engine(Arc::new(Slow(llama(), slow))),
    ];
    let mut net = Network::start_with(engines, |url| url).await;
    let fast = net.workers[0];
    let id = net
        .requester
        .submit(&request(net.deployment.model_id, "k", "Hello!", OutputFormat::Text, 4))
        .await
        .unwrap()
        .prompt_id;
    // Kill the fast worker the moment its commitment is on chain (the others are still running
    // the model, so it cannot have revealed yet).
    let started = Instant::now();
    loop {
        let committed = net.logs::<DI::OutputCommitted>(id).await;
        if committed.iter().any(|c| c.worker == fast) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "worker 0 never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(net.logs::<DI::OutputRevealed>(id).await.is_empty());
    net.kill_and_restart(0, Duration::from_secs(1)).await;

    assert_eq!(wait_final(&net, id, Duration::from_secs(300)).await, PromptStatus::Finalized);
    assert!(net.logs::<DI::WorkerPenalized>(id).await.is_empty());
    let reveals = net.logs::<DI::OutputRevealed>(id).await;
    assert!(reveals.iter().any(|r| r.worker == fast), "the restarted worker revealed");
    assert_eq!(net.requester.worker(fast).await.unwrap().status, WorkerStatus::Active);
    net.stop().await;
}

/// A TCP proxy that can go away (refusing and cutting every connection) and come back.
#[derive(Clone)]
struct Proxy {
    port: u16,
    target: Arc<Mutex<Option<String>>>,
    up: Arc<AtomicBool>,
    tunnels: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start() -> (Self, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            target: Arc::default(),
            up: Arc::new(AtomicBool::new(true)),
            tunnels: Arc::default(),
        };
        let this = proxy.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !this.up.load(Ordering::SeqCst) {
                    continue; // dropped: the peer sees the connection closed
                }
                let Some(target) = this.target.lock().unwrap().clone() else { continue };
                this.tunnels.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        (proxy, accept)
    }

    /// Routes `url` through the proxy (and remembers where to forward).
    fn route(&self, url: String) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let host = rest.trim_end_matches('/');
        *self.target.lock().unwrap() = Some(host.to_owned());
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for tunnel in self.tunnels.lock().unwrap().drain(..) {
            tunnel.abort();
        }
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_finalize_after_a_ten_second_rpc_outage() {
    let (proxy, accept) = Proxy::start().await;
    let honest = Engine::new(llama());
    let engines = vec![honest.clone(), honest.clone(), honest];
    let route = proxy.clone();
    let net = Network::start_with(engines, move |url| route.route(url)).await;

    proxy.down();
    let id = net
        .requester
        .submit(&request(net.deployment.model_id, "o", "Hi!", OutputFormat::Text, 4))
        .await
        .unwrap()
        .prompt_id;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(net.logs::<DI::OutputCommitted>(id).await.is_empty(), "workers were cut off");
    proxy.up();

    assert_eq!(wait_final(&net, id, Duration::from_secs(120)).await, PromptStatus::Finalized);
    assert!(net.logs::<DI::WorkerPenalized>(id).await.is_empty());
    net.stop().await;
    proxy.down();
    accept.abort();
}
