//! The engine (work in progress).
use std::sync::Arc;

use crate::io::{Input, Output};
use crate::spec::{ClusterSpec, NodeId};
use crate::status::Status;
use crate::time::Instant;

pub struct Engine {
    spec: Arc<ClusterSpec>,
    me: NodeId,
}

impl Engine {
    pub fn new(spec: Arc<ClusterSpec>, me: NodeId, incarnation: u64, now: Instant) -> Engine {
        let _ = (incarnation, now);
        Engine { spec, me }
    }
    pub fn node(&self) -> NodeId {
        self.me
    }
    pub fn spec(&self) -> &Arc<ClusterSpec> {
        &self.spec
    }
    pub fn handle(&mut self, now: Instant, input: Input) {
        let _ = (now, input);
    }
    pub fn poll_output(&mut self) -> Output {
        Output::Wait(Instant::MAX)
    }
    pub fn status(&self, now: Instant) -> Status {
        let _ = now;
        unimplemented!()
    }
}
