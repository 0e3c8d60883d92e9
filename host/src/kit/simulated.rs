//! A simulated process table, for trying policies without processes: the
//! component tests use it, and policy authors describe one in JSON for
//! `sigd policy eval` and `sigd policy test`. No real signal is ever sent:
//! each signal is recorded, and a process that a signal would end ends.
//!
//! ```json
//! [{"pid": 42, "ppid": 1, "pgid": 42, "uid": 1000, "command": "server"},
//!  {"pid": 45, "uid": 0, "suid": 1000},
//!  {"pid": 43, "state": "zombie"},
//!  {"pid": 44, "ignores": [15], "permission_denied": false},
//!  {"pid": 53, "reaped": true}]
//! ```

use crate::process::{
    ExitStatus, Exited, Ids, KillError, Listed, Look, NoRoom, Opened, Process, ProcessInfo,
    ProcessTable, RunState, Seen,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// One process of the simulated table, as written in JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedProcess {
    pub pid: i32,
    /// Its parent; 1 if not given.
    #[serde(default = "one")]
    pub ppid: i32,
    /// Its process group; its own pid if not given.
    pub pgid: Option<i32>,
    /// Its session; its process group if not given.
    pub sid: Option<i32>,
    /// Its real uid (and its effective and saved ones unless given).
    #[serde(default)]
    pub uid: u32,
    /// Its effective uid, if not `uid`.
    pub euid: Option<u32>,
    /// Its saved set-user-id, if not `uid`.
    pub suid: Option<u32>,
    /// "running" (default), "sleeping", "stopped", "zombie" or "dead".
    #[serde(default = "running")]
    pub state: String,
    #[serde(default = "fake_command")]
    pub command: String,
    /// Signals it survives (handled or ignored).
    #[serde(default)]
    pub ignores: Vec<i32>,
    /// Whether the kernel would refuse sigd permission to signal it.
    #[serde(default)]
    pub permission_denied: bool,
    /// Whether its parent reaps it the moment a signal ends it: it is then
    /// gone from the table at once.
    #[serde(default)]
    pub reaped: bool,
}

fn one() -> i32 {
    1
}
fn running() -> String {
    "running".into()
}
fn fake_command() -> String {
    "simulated".into()
}

/// Something the host did to the simulated table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub pid: i32,
    pub signal: i32,
    /// Sent to the process group whose id is `pid`.
    pub group: bool,
}

/// Why a simulated table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SimulatedError {
    #[error("not a JSON list of processes: {0}")]
    Json(#[from] serde_json::Error),
    #[error("process {0}: unknown state {1:?}")]
    State(i32, String),
    #[error("process {0} is listed twice")]
    Duplicate(i32),
}

struct Entry {
    info: ProcessInfo,
    ignores: Vec<i32>,
    permission_denied: bool,
    reaped: bool,
    exit: Option<ExitStatus>,
}

#[derive(Default)]
struct Table {
    processes: BTreeMap<i32, Entry>,
    sent: Vec<Sent>,
}

impl Table {
    /// Deliver `signal` to `members` as one send, noted as sent to `pid`
    /// (with `group`, the group's id): refused whole if the kernel would
    /// refuse sigd any of them.
    fn deliver(
        &mut self,
        pid: i32,
        members: Vec<i32>,
        signal: i32,
        group: bool,
    ) -> Result<(), KillError> {
        if members
            .iter()
            .any(|pid| self.processes[pid].permission_denied)
        {
            return Err(KillError::PermissionDenied);
        }
        self.sent.push(Sent { pid, signal, group });
        for pid in members {
            let Some(entry) = self.processes.get_mut(&pid) else {
                continue;
            };
            if !entry.info.state.has_exited() && ends(signal) && !entry.ignores.contains(&signal) {
                entry.info.state = RunState::Zombie;
                entry.exit = Some(ExitStatus::Signal(signal));
                if entry.reaped {
                    self.processes.remove(&pid);
                }
            }
        }
        Ok(())
    }
}

/// A process table in memory. Clones share it.
#[derive(Clone, Default)]
pub struct Simulated(Arc<Mutex<Table>>);

impl Simulated {
    /// A table of these processes.
    pub fn new(processes: Vec<SimulatedProcess>) -> Result<Simulated, SimulatedError> {
        let mut table = Table::default();
        for p in processes {
            let state = match p.state.as_str() {
                "running" => RunState::Running,
                "sleeping" => RunState::Sleeping,
                "stopped" => RunState::Stopped,
                "zombie" => RunState::Zombie,
                "dead" => RunState::Dead,
                _ => return Err(SimulatedError::State(p.pid, p.state)),
            };
            let pgid = p.pgid.unwrap_or(p.pid);
            let info = ProcessInfo {
                pid: p.pid,
                ppid: p.ppid,
                pgid,
                sid: p.sid.unwrap_or(pgid),
                uids: Ids {
                    real: p.uid,
                    effective: p.euid.unwrap_or(p.uid),
                    saved: p.suid.unwrap_or(p.uid),
                },
                gids: Ids::all(0),
                state,
                start_time: 1000 + p.pid as u64,
                command: p.command,
                exit_code: None,
            };
            let entry = Entry {
                info,
                ignores: p.ignores,
                permission_denied: p.permission_denied,
                reaped: p.reaped,
                exit: state.has_exited().then_some(ExitStatus::Code(0)),
            };
            if table.processes.insert(p.pid, entry).is_some() {
                return Err(SimulatedError::Duplicate(p.pid));
            }
        }
        Ok(Simulated(Arc::new(Mutex::new(table))))
    }

    /// A table from its JSON description (see the module's documentation).
    pub fn from_json(text: &str) -> Result<Simulated, SimulatedError> {
        Simulated::new(serde_json::from_str(text)?)
    }

    /// Every signal sent so far, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ProcessTable for Simulated {
    fn lookup(&self, pid: i32) -> Option<ProcessInfo> {
        self.lock().processes.get(&pid).map(|e| e.info.clone())
    }

    fn snapshot(&self) -> Vec<Listed> {
        let table = self.lock();
        table
            .processes
            .values()
            .map(|e| Listed::from(&e.info))
            .collect()
    }

    /// A simulated table's processes have all started.
    fn now(&self) -> u64 {
        u64::MAX
    }

    fn open(&self, pid: i32, look: Look) -> Result<Option<Opened>, NoRoom> {
        let Some(info) = self.lookup(pid) else {
            return Ok(None);
        };
        let process = Arc::new(SimulatedHandle {
            table: self.clone(),
            pid,
        });
        let seen = match look {
            Look::Alive => Seen::Alive(!info.state.has_exited()),
            Look::State => Seen::State(info.state),
            Look::Info => Seen::Info(info),
        };
        Ok(Some(Opened { process, seen }))
    }
}

/// A handle on a simulated process.
struct SimulatedHandle {
    table: Simulated,
    pid: i32,
}

/// Whether a signal's default action ends a process (not CHLD, CONT, URG,
/// WINCH, nor the stop signals).
fn ends(signal: i32) -> bool {
    !matches!(signal, 17 | 18 | 19 | 20 | 21 | 22 | 23 | 28)
}

impl Process for SimulatedHandle {
    fn pid(&self) -> i32 {
        self.pid
    }

    fn start_time(&self) -> Option<u64> {
        self.info().map(|info| info.start_time)
    }

    fn info(&self) -> Option<ProcessInfo> {
        self.table.lookup(self.pid)
    }

    fn send(&self, signal: i32) -> Result<(), KillError> {
        let mut table = self.table.lock();
        table.processes.get(&self.pid).ok_or(KillError::NotFound)?;
        table.deliver(self.pid, vec![self.pid], signal, false)
    }

    fn send_to_group(&self, signal: i32) -> Result<(), KillError> {
        // Through the leader's pidfd the group is reached even once the
        // leader has been reaped.
        let pgid = self.pid;
        let mut table = self.table.lock();
        let members = table.processes.values().filter(|e| e.info.pgid == pgid);
        let members: Vec<i32> = members.map(|e| e.info.pid).collect();
        if members.is_empty() {
            return Err(KillError::NotFound);
        }
        table.deliver(pgid, members, signal, true)
    }

    fn exited(&self) -> Exited {
        let handle = SimulatedHandle {
            table: self.table.clone(),
            pid: self.pid,
        };
        Box::pin(async move {
            while handle.exit_status().is_none() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    }

    fn exit_status(&self) -> Option<ExitStatus> {
        let table = self.table.lock();
        match table.processes.get(&self.pid) {
            None => Some(ExitStatus::Unknown),
            Some(entry) => entry.exit,
        }
    }
}
