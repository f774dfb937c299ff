//! The simulated network: per directed path (one UDP link from one node to another, or
//! a node to or from the witness) loss, delay with jitter, duplication, reordering and a
//! cut flag (a partition cuts both directions, a one-way partition one). It decides what
//! happens to each datagram; the simulator schedules the deliveries. It must not know
//! engines or messages.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Probabilities are in parts per million: integer arithmetic only.
pub const PPM: u32 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathParams {
    pub loss_ppm: u32,
    pub delay_min_ns: u64,
    pub delay_max_ns: u64,
    pub duplicate_ppm: u32,
    /// A reordered datagram is held back by up to `reorder_delay_max_ns` more.
    pub reorder_ppm: u32,
    pub reorder_delay_max_ns: u64,
}

impl PathParams {
    /// A clean path with a fixed delay.
    pub const fn fixed(delay_ns: u64) -> PathParams {
        PathParams {
            loss_ppm: 0,
            delay_min_ns: delay_ns,
            delay_max_ns: delay_ns,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_delay_max_ns: 0,
        }
    }

    /// The same path with loss, duplication and reordering removed.
    pub fn healed(self) -> PathParams {
        PathParams { loss_ppm: 0, duplicate_ppm: 0, reorder_ppm: 0, ..self }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    pub params: PathParams,
    pub cut: bool,
}

/// Up to two deliveries (an original and a duplicate) of one datagram, as delays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deliveries {
    pub first: Option<u64>,
    pub second: Option<u64>,
}

impl Path {
    pub fn new(params: PathParams) -> Path {
        Path { params, cut: false }
    }

    /// What happens to one datagram sent now.
    pub fn send(&self, rng: &mut ChaCha8Rng) -> Deliveries {
        if self.cut || chance(rng, self.params.loss_ppm) {
            return Deliveries::default();
        }
        let first = Some(self.delay(rng));
        let second = chance(rng, self.params.duplicate_ppm).then(|| self.delay(rng));
        Deliveries { first, second }
    }

    fn delay(&self, rng: &mut ChaCha8Rng) -> u64 {
        let p = &self.params;
        let mut delay = between(rng, p.delay_min_ns, p.delay_max_ns);
        if chance(rng, p.reorder_ppm) {
            delay += between(rng, 0, p.reorder_delay_max_ns);
        }
        delay
    }
}

/// True with probability `ppm` / 1e6 (no draw when it is 0, so clean paths cost nothing).
pub fn chance(rng: &mut ChaCha8Rng, ppm: u32) -> bool {
    ppm > 0 && rng.gen_range(0..PPM) < ppm
}

/// Uniform in `[min, max]` (no draw when they are equal).
pub fn between(rng: &mut ChaCha8Rng, min: u64, max: u64) -> u64 {
    if max <= min {
        min
    } else {
        rng.gen_range(min..=max)
    }
}

/// Every UDP path of the cluster, indexed by (link, from, to), and the paths to and
/// from the witness, indexed by node.
pub struct Network {
    nodes: usize,
    links: usize,
    paths: Vec<Path>,
    pub to_witness: Vec<Path>,
    pub from_witness: Vec<Path>,
}

impl Network {
    pub fn new(links: usize, nodes: usize, params: PathParams) -> Network {
        Network {
            nodes,
            links,
            paths: vec![Path::new(params); links * nodes * nodes],
            to_witness: vec![Path::new(params); nodes],
            from_witness: vec![Path::new(params); nodes],
        }
    }

    fn index(&self, link: usize, from: usize, to: usize) -> usize {
        assert!(link < self.links && from < self.nodes && to < self.nodes);
        (link * self.nodes + from) * self.nodes + to
    }

    pub fn path(&self, link: usize, from: usize, to: usize) -> &Path {
        &self.paths[self.index(link, from, to)]
    }

    pub fn path_mut(&mut self, link: usize, from: usize, to: usize) -> &mut Path {
        let i = self.index(link, from, to);
        &mut self.paths[i]
    }

    /// Cuts or heals one direction.
    pub fn set_cut(&mut self, link: usize, from: usize, to: usize, cut: bool) {
        self.path_mut(link, from, to).cut = cut;
    }

    /// Heals every path: no cut, no loss, duplication or reordering.
    pub fn heal_all(&mut self) {
        for path in self.paths.iter_mut().chain(&mut self.to_witness).chain(&mut self.from_witness)
        {
            path.cut = false;
            path.params = path.params.healed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn cut_and_loss_drop_everything() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut path = Path::new(PathParams::fixed(1_000));
        assert_eq!(path.send(&mut rng), Deliveries { first: Some(1_000), second: None });
        path.cut = true;
        assert_eq!(path.send(&mut rng), Deliveries::default());
        let lossy = Path::new(PathParams { loss_ppm: PPM, ..PathParams::fixed(1) });
        assert_eq!(lossy.send(&mut rng), Deliveries::default());
    }

    #[test]
    fn duplication_and_jitter() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let params = PathParams {
            loss_ppm: 0,
            delay_min_ns: 100,
            delay_max_ns: 200,
            duplicate_ppm: PPM,
            reorder_ppm: PPM,
            reorder_delay_max_ns: 1_000,
        };
        let path = Path::new(params);
        for _ in 0..100 {
            let d = path.send(&mut rng);
            let (a, b) = (d.first.unwrap(), d.second.unwrap());
            assert!((100..=1_200).contains(&a) && (100..=1_200).contains(&b));
        }
    }

    #[test]
    fn network_indexes_directions_apart() {
        let mut net = Network::new(2, 3, PathParams::fixed(5));
        net.set_cut(1, 0, 2, true);
        assert!(net.path(1, 0, 2).cut);
        assert!(!net.path(1, 2, 0).cut);
        assert!(!net.path(0, 0, 2).cut);
        net.heal_all();
        assert!(!net.path(1, 0, 2).cut);
    }
}
