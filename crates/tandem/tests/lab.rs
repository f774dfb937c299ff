//! tandem in the lab, as root (`TANDEM_LAB=1`, which the test command sets): the
//! scenarios of issue 3 with real daemons, virtual IPs, a shared disk and a client; the
//! harness (and its double-holder sampler) is `support/cluster.rs`.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use cluster::*;

#[test]
fn active_standby_production_crash_fails_over_with_the_data() {
    if !lab_available("active_standby_production_crash_fails_over_with_the_data") {
        return;
    }
    let cluster = Cluster::formed(&Options::default());
    cluster.exec_ok(0, &format!("echo written-before-crash > {MOUNT}/hello.txt && sync"));
    // The standby's device is read-only (lock_standby).
    let ro = cluster.exec_ok(1, "blockdev --getro /etc/tandem/disk-data");
    assert_eq!(ro.trim(), "1", "lock_standby did not set beta's device read-only");
    cluster.lab.crash(0).expect("crash alpha");
    cluster.wait_owner(1, "web", "beta", Duration::from_secs(30));
    cluster.wait_served_by(VIP, "beta", Duration::from_secs(10));
    let out = cluster
        .lab
        .exec(
            Node::Client,
            &[TANDEM, "probe", "--target", &format!("{VIP}:{PORT}"), "--count", "1"],
        )
        .unwrap();
    let body = cluster.exec_ok(1, &format!("cat {MOUNT}/hello.txt"));
    assert_eq!(body.trim(), "written-before-crash", "{out:?}");
    for code in ["E2104", "W4111"] {
        assert!(cluster.codes(1).contains(&code.to_string()), "{code}\n{}", cluster.report());
    }
    cluster.assert_never_double();
}

#[test]
fn a_killed_daemon_has_its_resources_stopped_before_the_standby_starts_them() {
    if !lab_available("a_killed_daemon_has_its_resources_stopped_before_the_standby_starts_them") {
        return;
    }
    let mut cluster = Cluster::formed(&Options::default());
    let daemon = cluster.nodes[0].as_ref().unwrap().pid() as i32;
    cluster.lab.kill_process(Node::Host(0), daemon).expect("SIGKILL alpha's daemon");
    cluster.wait_owner(1, "web", "beta", Duration::from_secs(30));
    cluster.wait_served_by(VIP, "beta", Duration::from_secs(10));
    // The guard fired on alpha: journaled, and nothing of web is left there.
    cluster.wait_code(0, "E3109", Duration::from_secs(5));
    let pid = cluster.lab.pids(Node::Host(0)).unwrap().first().copied();
    if let Some(pid) = pid {
        assert!(!holds_address(pid, VIP) && !holds_mount(pid, MOUNT));
    }
    cluster.assert_never_double();
    cluster.nodes[0] = None;
}

#[test]
fn planned_switchover_moves_the_group_and_back() {
    if !lab_available("planned_switchover_moves_the_group_and_back") {
        return;
    }
    let cluster = Cluster::formed(&Options::default());
    let out =
        cluster.lab.exec(Node::Host(0), &[TANDEM, "switchover", "web", "--to", "beta"]).unwrap();
    assert!(out.success(), "{out:?}");
    cluster.wait_owner(0, "web", "beta", Duration::from_secs(20));
    cluster.wait_served_by(VIP, "beta", Duration::from_secs(10));
    assert!(cluster.codes(0).contains(&"I4112".to_string()), "{}", cluster.report());
    let out = cluster.lab.exec(Node::Host(1), &[TANDEM, "switchover", "web"]).unwrap();
    assert!(out.success(), "{out:?}");
    cluster.wait_owner(1, "web", "alpha", Duration::from_secs(20));
    cluster.wait_served_by(VIP, "alpha", Duration::from_secs(10));
    cluster.assert_never_double();
}

#[test]
fn disk_path_lost_on_production_fences_it_and_the_standby_takes_over() {
    if !lab_available("disk_path_lost_on_production_fences_it_and_the_standby_takes_over") {
        return;
    }
    let cluster = Cluster::formed(&Options::default());
    cluster.lab.lose_disk(0).expect("lose alpha's disk path");
    cluster.wait_owner(1, "web", "beta", Duration::from_secs(30));
    cluster.wait_served_by(VIP, "beta", Duration::from_secs(10));
    cluster.wait_code(0, "E2106", Duration::from_secs(5));
    cluster.assert_never_double();
}
