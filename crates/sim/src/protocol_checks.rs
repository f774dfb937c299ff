//! Randomized safety checks of the lease protocols of the `arbiter` crate on the
//! simulator's clocks and event queue (they live here because they use both): clients on
//! drifting clocks acting like the engine, with latency, errors, losses and crashes; at
//! no real instant may two clients hold a valid lease on one group.

mod disk {
    const MS: u64 = 1_000_000;
    /// A randomized check of the protocol alone (no engine): clients on drifting clocks
    /// with random I/O latency (below the I/O timeout), I/O errors, path losses and
    /// crashes, each acting like the engine (one lease for all its groups, renewed every
    /// renew interval, given up at expiry), most of them watching ahead, some reading
    /// their answers late as the daemon reads quiet disk jobs (at their next step or
    /// tick, each with the instant it ended; promptly while an acquire or release is
    /// pending). At no real instant may two clients hold a valid lease on one group.
    #[test]
    fn randomized_leases_never_overlap() {
        check(3, 0.0);
    }

    /// The same with some writes landing long after their deadline, as on a disk that
    /// stalls (a loop device over a busy file system: 450 ms against a 31 ms timeout;
    /// a multipath path failover: seconds): the writer gave up on them, but they land.
    /// Two nodes, the deployments tandem is made for (see
    /// `DiskLeaseClient::acquire_blocked` for why three nodes are not covered). Before
    /// that rule, seed 49 ran a group on both nodes: a claim given up on landed over
    /// the peer's, and its writer took the group again through its own record.
    #[test]
    fn randomized_leases_never_overlap_with_writes_landing_late() {
        check(2, 0.10);
    }

    /// `nodes` clients; each I/O lands late (1 to 25 I/O timeouts) with probability
    /// `late_share`, otherwise within the I/O timeout.
    fn check(nodes_count: usize, late_share: f64) {
        use crate::clock::Clock;
        use crate::queue::EventQueue;
        use arbiter::disk::*;
        use engine::{GroupId, Instant, LeaseRequest, LeaseResult, NodeId, OpId, Timing};
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;
        use std::collections::BTreeMap;
        use std::time::Duration;

        const GROUPS: u32 = 2;
        let timing = Timing::default();
        let io_timeout = Duration::from_millis(20);
        let config = DiskLeaseConfig::new(&timing, io_timeout);
        let lt = timing.lease_timeout;

        enum Ev {
            Io { node: usize, life: u64, io: IoId, op: IoOp, ok: bool },
            Wake { node: usize, life: u64, at: u64 },
            Tick { node: usize, life: u64 },
            Crash { node: usize },
            Path { node: usize, ok: bool },
        }
        struct Node {
            clock: Clock,
            client: DiskLeaseClient,
            life: u64,
            up: bool,
            path_ok: bool,
            held: BTreeMap<GroupId, ()>,
            valid_until: Option<Instant>,
            pending: BTreeMap<OpId, LeaseRequest>,
            next_op: u64,
            /// Watches every group ahead (`DiskLeaseClient::watch`) in this life.
            ahead: bool,
            ahead_started: bool,
            /// The one wake-up event scheduled (real time), so that they do not multiply.
            wake_at: Option<u64>,
            /// Reads its answers only when it wakes, at least every this long (local).
            late: Option<u64>,
            /// Answers not read yet: when each ended (local), the I/O, its result.
            unread: Vec<(Instant, IoId, IoResult)>,
        }

        let mut granted = 0;
        for seed in 0..64u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut disk: BTreeMap<Block, Record> = BTreeMap::new();
            let mut queue = EventQueue::default();
            let mut nodes: Vec<Node> = (0..nodes_count)
                .map(|n| Node {
                    clock: Clock::new(
                        rng.gen_range(0..10_000_000_000),
                        rng.gen_range(-5_000..=5_000),
                    ),
                    client: DiskLeaseClient::new(NodeId(n as u16), 1, config),
                    life: 1,
                    up: true,
                    path_ok: true,
                    held: BTreeMap::new(),
                    valid_until: None,
                    pending: BTreeMap::new(),
                    next_op: 0,
                    ahead: rng.gen_bool(0.6),
                    ahead_started: false,
                    wake_at: None,
                    late: rng.gen_bool(0.5).then(|| rng.gen_range(10..100) * MS),
                    unread: Vec::new(),
                })
                .collect();
            for n in 0..nodes_count {
                queue.push(rng.gen_range(0..MS * 100), Ev::Tick { node: n, life: 1 });
                queue.push(rng.gen_range(1..60) * 1_000 * MS, Ev::Crash { node: n });
                queue.push(rng.gen_range(1..60) * 1_000 * MS, Ev::Path { node: n, ok: false });
            }
            let error_ppm = rng.gen_range(0..100_000u32);
            let end = 180 * 1_000 * MS;
            while let Some((now, ev)) = queue.pop() {
                if now > end {
                    break;
                }
                // Drain a node's client: I/O to the disk, replies to the "engine".
                let drain = |n: usize,
                             nodes: &mut Vec<Node>,
                             queue: &mut EventQueue<Ev>,
                             rng: &mut ChaCha8Rng| {
                    loop {
                        let node = &mut nodes[n];
                        let local = node.clock.local(now);
                        match node.client.poll_output() {
                            ClientOutput::Io { io, op } => {
                                let io_ns = io_timeout.as_nanos() as u64;
                                let latency = if late_share > 0.0 && rng.gen_bool(late_share) {
                                    rng.gen_range(io_ns..io_ns * 25)
                                } else {
                                    rng.gen_range(MS / 10..io_ns * 95 / 100)
                                };
                                let ok = node.path_ok && rng.gen_range(0..1_000_000) >= error_ppm;
                                queue.push(
                                    now + latency,
                                    Ev::Io { node: n, life: node.life, io, op, ok },
                                );
                            }
                            ClientOutput::Reply { id, result } => {
                                let request =
                                    node.pending.remove(&id).expect("a reply to a request");
                                let since = match (&request, &result) {
                                    (LeaseRequest::Acquire(g), LeaseResult::Granted { since }) => {
                                        node.held.insert(*g, ());
                                        Some(*since)
                                    }
                                    (LeaseRequest::Renew, LeaseResult::Granted { since }) => {
                                        Some(*since)
                                    }
                                    (LeaseRequest::Renew, LeaseResult::Lost { groups }) => {
                                        for g in groups {
                                            node.held.remove(g);
                                        }
                                        None
                                    }
                                    _ => None,
                                };
                                if let Some(since) = since {
                                    assert!(since <= local, "a grant from the future");
                                    let until = since + lt;
                                    node.valid_until =
                                        Some(node.valid_until.map_or(until, |u| u.max(until)));
                                }
                            }
                            ClientOutput::Wait(at) => {
                                let prompt =
                                    node.pending.values().any(|r| *r != LeaseRequest::Renew);
                                let at = match node.late.filter(|_| !prompt) {
                                    Some(every) => node
                                        .client
                                        .next_step_at()
                                        .min(local + Duration::from_nanos(every)),
                                    None => at,
                                };
                                if let Some(real) = node.clock.real_at(at) {
                                    let real = real.max(now);
                                    if node.wake_at != Some(real) {
                                        node.wake_at = Some(real);
                                        let life = node.life;
                                        queue.push(real, Ev::Wake { node: n, life, at: real });
                                    }
                                }
                                return;
                            }
                        }
                    }
                };
                match ev {
                    Ev::Io { node: n, life, io, op, ok } => {
                        let result = match (ok, op) {
                            (false, _) => IoResult::Failed("error".into()),
                            (true, IoOp::Read(b)) => {
                                IoResult::Read(disk.get(&b).cloned().unwrap_or_default())
                            }
                            (true, IoOp::Write(b, r)) => {
                                disk.insert(b, r);
                                IoResult::Written
                            }
                        };
                        let node = &mut nodes[n];
                        if node.up && node.life == life {
                            let local = node.clock.local(now);
                            // Late readers read promptly while an acquire or release is
                            // pending, as `DiskLeaseClient::io_done` requires (the
                            // daemon's prompt mode).
                            let prompt = node.pending.values().any(|r| *r != LeaseRequest::Renew);
                            if node.late.is_some() && !prompt {
                                node.unread.push((local, io, result));
                            } else {
                                node.client.io_done(local, local, io, result);
                                drain(n, &mut nodes, &mut queue, &mut rng);
                            }
                        }
                    }
                    Ev::Wake { node: n, life, at } => {
                        let node = &mut nodes[n];
                        if node.up && node.life == life && node.wake_at == Some(at) {
                            node.wake_at = None;
                            let local = node.clock.local(now);
                            for (ended, io, result) in std::mem::take(&mut node.unread) {
                                node.client.io_done(local, ended, io, result);
                            }
                            node.client.timeout(local);
                            drain(n, &mut nodes, &mut queue, &mut rng);
                        }
                    }
                    Ev::Tick { node: n, life } => {
                        let node = &mut nodes[n];
                        if !node.up || node.life != life {
                            continue;
                        }
                        let local = node.clock.local(now);
                        for (ended, io, result) in std::mem::take(&mut node.unread) {
                            node.client.io_done(local, ended, io, result);
                        }
                        if node.ahead && !node.ahead_started {
                            node.ahead_started = true;
                            node.client.watch(local, (0..GROUPS).map(GroupId).collect());
                        }
                        if node.valid_until.is_some_and(|u| u <= local) {
                            node.held.clear(); // expired: the engine gives everything up
                            node.valid_until = None;
                        }
                        let mut requests = Vec::new();
                        if !node.held.is_empty()
                            && !node.pending.values().any(|r| *r == LeaseRequest::Renew)
                        {
                            requests.push(LeaseRequest::Renew);
                        }
                        for g in 0..GROUPS {
                            let g = GroupId(g);
                            if !node.held.contains_key(&g)
                                && !node.pending.values().any(|r| *r == LeaseRequest::Acquire(g))
                                && rng.gen_bool(0.3)
                            {
                                requests.push(LeaseRequest::Acquire(g));
                            }
                        }
                        if !node.held.is_empty() && rng.gen_bool(0.05) {
                            let g = *node.held.keys().next().expect("non-empty");
                            node.held.remove(&g);
                            requests.push(LeaseRequest::Release(g));
                        }
                        for request in requests {
                            let node = &mut nodes[n];
                            node.next_op += 1;
                            let id = OpId(node.next_op);
                            if request != LeaseRequest::Renew {
                                // Prompt from here: what was not read yet is read first.
                                for (ended, io, result) in std::mem::take(&mut node.unread) {
                                    node.client.io_done(local, ended, io, result);
                                }
                            }
                            node.pending.insert(id, request);
                            node.client.request(local, id, request);
                        }
                        drain(n, &mut nodes, &mut queue, &mut rng);
                        let node = &nodes[n];
                        let next =
                            node.clock.real_at(local + timing.lease_renew_interval()).unwrap();
                        queue.push(next, Ev::Tick { node: n, life });
                    }
                    Ev::Crash { node: n } => {
                        let node = &mut nodes[n];
                        if node.up {
                            node.up = false;
                            node.held.clear();
                            node.valid_until = None;
                            node.pending.clear();
                            queue.push(
                                now + rng.gen_range(1..10) * 1_000 * MS,
                                Ev::Crash { node: n },
                            );
                        } else {
                            node.up = true;
                            node.life += 1;
                            node.client = DiskLeaseClient::new(NodeId(n as u16), node.life, config);
                            node.ahead = rng.gen_bool(0.6);
                            node.ahead_started = false;
                            node.wake_at = None;
                            node.late = rng.gen_bool(0.5).then(|| rng.gen_range(10..100) * MS);
                            node.unread.clear();
                            queue.push(now, Ev::Tick { node: n, life: node.life });
                            queue.push(
                                now + rng.gen_range(5..60) * 1_000 * MS,
                                Ev::Crash { node: n },
                            );
                        }
                    }
                    Ev::Path { node: n, ok } => {
                        nodes[n].path_ok = ok;
                        let next = now + rng.gen_range(1..20) * 1_000 * MS;
                        queue.push(next, Ev::Path { node: n, ok: !ok });
                    }
                }
                // The invariant, at this real instant.
                for g in 0..GROUPS {
                    let g = GroupId(g);
                    let holders: Vec<usize> = (0..nodes_count)
                        .filter(|n| {
                            let node = &nodes[*n];
                            node.up
                                && node.held.contains_key(&g)
                                && node.valid_until.is_some_and(|u| u > node.clock.local(now))
                        })
                        .collect();
                    assert!(
                        holders.len() <= 1,
                        "seed {seed}: {g:?} held by {holders:?} at {now} ns"
                    );
                    granted += holders.len();
                }
            }
        }
        assert!(granted > 1_000, "the test must exercise grants ({granted})");
    }
}

mod witness {
    const SEC: u64 = 1_000_000_000;
    /// A randomized check of the protocol alone: clients on drifting clocks acting like
    /// the engine (one lease for all groups, renewed every renew interval, dropped at
    /// expiry), a witness on its own drifting clock, messages lost, delayed, duplicated
    /// and reordered, clients crashing and restarting with a new incarnation. At no real
    /// instant may two clients hold a valid lease on one group.
    #[test]
    fn randomized_leases_never_overlap() {
        use crate::clock::Clock;
        use crate::queue::EventQueue;
        use arbiter::witness::*;
        use engine::Timing;
        use engine::{GroupId, Instant, LeaseRequest, LeaseResult, NodeId, OpId};
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;
        use std::collections::BTreeMap;
        use std::time::Duration;

        const NODES: usize = 3;
        const GROUPS: u32 = 2;
        const MS: u64 = 1_000_000;
        let timing = Timing::default();
        let lt = timing.lease_timeout;

        enum Ev {
            ToWitness(WitnessRequest),
            ToNode(WitnessReply),
            Wake { node: usize, life: u64 },
            Tick { node: usize, life: u64 },
            Crash { node: usize },
        }
        struct Node {
            clock: Clock,
            client: WitnessClient,
            life: u64,
            up: bool,
            held: BTreeMap<GroupId, ()>,
            valid_until: Option<Instant>,
            pending: BTreeMap<OpId, LeaseRequest>,
            next_op: u64,
        }

        let mut granted = 0;
        for seed in 0..24u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let witness_clock = Clock::new(rng.gen_range(0..SEC), rng.gen_range(-5_000..=5_000));
            let mut server = WitnessServer::new(GROUPS as usize, timing.lease_takeover_wait());
            let mut queue = EventQueue::default();
            let reply_timeout = Duration::from_millis(150);
            let mut nodes: Vec<Node> = (0..NODES)
                .map(|n| Node {
                    clock: Clock::new(rng.gen_range(0..10 * SEC), rng.gen_range(-5_000..=5_000)),
                    client: WitnessClient::new(NodeId(n as u16), 1, reply_timeout),
                    life: 1,
                    up: true,
                    held: BTreeMap::new(),
                    valid_until: None,
                    pending: BTreeMap::new(),
                    next_op: 0,
                })
                .collect();
            for n in 0..NODES {
                queue.push(rng.gen_range(0..100 * MS), Ev::Tick { node: n, life: 1 });
                queue.push(rng.gen_range(1..60) * SEC, Ev::Crash { node: n });
            }
            let loss_ppm = rng.gen_range(0..300_000u32);
            let end = 180 * SEC;
            // Up to two deliveries (loss, duplication), each with a random delay.
            let deliveries = |rng: &mut ChaCha8Rng| -> Vec<u64> {
                let copies = if rng.gen_range(0..1_000_000) < loss_ppm {
                    0
                } else if rng.gen_bool(0.05) {
                    2
                } else {
                    1
                };
                (0..copies).map(|_| rng.gen_range(MS / 10..300 * MS)).collect()
            };
            while let Some((now, ev)) = queue.pop() {
                if now > end {
                    break;
                }
                let drain = |n: usize,
                             nodes: &mut Vec<Node>,
                             queue: &mut EventQueue<Ev>,
                             rng: &mut ChaCha8Rng| loop {
                    let node = &mut nodes[n];
                    let local = node.clock.local(now);
                    match node.client.poll_output() {
                        WitnessClientOutput::Send(request) => {
                            for delay in deliveries(rng) {
                                queue.push(now + delay, Ev::ToWitness(request.clone()));
                            }
                        }
                        WitnessClientOutput::Reply { id, result } => {
                            let request = node.pending.remove(&id).expect("a reply to a request");
                            let since = match (&request, &result) {
                                (LeaseRequest::Acquire(g), LeaseResult::Granted { since }) => {
                                    node.held.insert(*g, ());
                                    Some(*since)
                                }
                                (LeaseRequest::Renew, LeaseResult::Granted { since }) => {
                                    Some(*since)
                                }
                                (LeaseRequest::Renew, LeaseResult::Lost { groups }) => {
                                    for g in groups {
                                        node.held.remove(g);
                                    }
                                    None
                                }
                                _ => None,
                            };
                            if let Some(since) = since {
                                assert!(since <= local, "a grant from the future");
                                let until = since + lt;
                                node.valid_until =
                                    Some(node.valid_until.map_or(until, |u| u.max(until)));
                            }
                        }
                        WitnessClientOutput::Wait(at) => {
                            if let Some(real) = node.clock.real_at(at) {
                                queue.push(real.max(now), Ev::Wake { node: n, life: node.life });
                            }
                            return;
                        }
                    }
                };
                match ev {
                    Ev::ToWitness(request) => {
                        if let Some(reply) = server.handle(witness_clock.local(now), &request) {
                            for delay in deliveries(&mut rng) {
                                queue.push(now + delay, Ev::ToNode(reply.clone()));
                            }
                        }
                    }
                    Ev::ToNode(reply) => {
                        let n = usize::from(reply.to.0);
                        let node = &mut nodes[n];
                        if node.up {
                            node.client.reply(node.clock.local(now), &reply);
                            drain(n, &mut nodes, &mut queue, &mut rng);
                        }
                    }
                    Ev::Wake { node: n, life } => {
                        let node = &mut nodes[n];
                        if node.up && node.life == life {
                            node.client.timeout(node.clock.local(now));
                            drain(n, &mut nodes, &mut queue, &mut rng);
                        }
                    }
                    Ev::Tick { node: n, life } => {
                        let node = &mut nodes[n];
                        if !node.up || node.life != life {
                            continue;
                        }
                        let local = node.clock.local(now);
                        if node.valid_until.is_some_and(|u| u <= local) {
                            node.held.clear();
                            node.valid_until = None;
                        }
                        let mut requests = Vec::new();
                        if !node.held.is_empty()
                            && !node.pending.values().any(|r| *r == LeaseRequest::Renew)
                        {
                            requests.push(LeaseRequest::Renew);
                        }
                        for g in 0..GROUPS {
                            let g = GroupId(g);
                            if !node.held.contains_key(&g)
                                && !node.pending.values().any(|r| *r == LeaseRequest::Acquire(g))
                                && rng.gen_bool(0.3)
                            {
                                requests.push(LeaseRequest::Acquire(g));
                            }
                        }
                        if !node.held.is_empty() && rng.gen_bool(0.02) {
                            let g = *node.held.keys().next().expect("non-empty");
                            node.held.remove(&g);
                            requests.push(LeaseRequest::Release(g));
                        }
                        for request in requests {
                            let node = &mut nodes[n];
                            node.next_op += 1;
                            let id = OpId(node.next_op);
                            node.pending.insert(id, request);
                            node.client.request(local, id, request);
                        }
                        drain(n, &mut nodes, &mut queue, &mut rng);
                        let node = &nodes[n];
                        let next =
                            node.clock.real_at(local + timing.lease_renew_interval()).unwrap();
                        queue.push(next, Ev::Tick { node: n, life });
                    }
                    Ev::Crash { node: n } => {
                        let node = &mut nodes[n];
                        if node.up {
                            node.up = false;
                            node.held.clear();
                            node.valid_until = None;
                            node.pending.clear();
                            queue.push(now + rng.gen_range(1..10) * SEC, Ev::Crash { node: n });
                        } else {
                            node.up = true;
                            node.life += 1;
                            node.client =
                                WitnessClient::new(NodeId(n as u16), node.life, reply_timeout);
                            queue.push(now, Ev::Tick { node: n, life: node.life });
                            queue.push(now + rng.gen_range(5..60) * SEC, Ev::Crash { node: n });
                        }
                    }
                }
                for g in 0..GROUPS {
                    let g = GroupId(g);
                    let holders: Vec<usize> = (0..NODES)
                        .filter(|n| {
                            let node = &nodes[*n];
                            node.up
                                && node.held.contains_key(&g)
                                && node.valid_until.is_some_and(|u| u > node.clock.local(now))
                        })
                        .collect();
                    assert!(
                        holders.len() <= 1,
                        "seed {seed}: {g:?} held by {holders:?} at {now} ns"
                    );
                    granted += holders.len();
                }
            }
        }
        assert!(granted > 1_000, "the test must exercise grants ({granted})");
    }
}
