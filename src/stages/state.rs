//! What the early stage remembers for the late one (`/run/vflag/<pf>.json`) and the flag
//! that turns on representor naming.

use super::StageError;
use crate::device::devlink::Handle;
use crate::device::sysfs;
use crate::names::IfName;
use crate::paths::Root;
use std::fs;
use std::path::PathBuf;
use tracing::warn;

/// What the early stage remembers for the late one: `/run/vflag/<pf>.json`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// Devlink handle of the PF's device; a record for another device is ignored.
    pub device: String,
    /// `sriov_drivers_autoprobe` before vflag turned it off.
    pub autoprobe_before: Option<bool>,
    pub vfs: Vec<VfRecord>,
    pub setup_done: bool,
    /// The PF's `phys_port_name` when set-up began (empty: none), so that udev can give the
    /// configured name back to this physical port if the eswitch change re-creates it.
    #[serde(default)]
    pub port: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VfRecord {
    pub index: u32,
    pub addr: String,
    /// The driver it was unbound from; `None`: never bound (created with autoprobe off).
    pub driver: Option<String>,
}

/// Present once some LAG wanted its representors named `<pf>r<vf>` (until reboot: a later
/// `representor-names = no` only costs udev a few idle `vflag udev-name` runs): only then does
/// 79-vflag-names.rules ask `vflag udev-name` about representors (one process per representor
/// that udev adds, dozens with the eswitch change, all on the boot's critical path).
pub fn representor_names_flag(root: &Root) -> PathBuf {
    root.representor_names_flag()
}

pub fn state_path(root: &Root, pf: &IfName) -> PathBuf {
    root.state_file(pf)
}

impl State {
    /// The record of `pf` as written, whatever device it is for (`None`: none or unreadable).
    pub fn read(root: &Root, pf: &IfName) -> Option<State> {
        let text = fs::read_to_string(root.state_file(pf)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The record for this PF's current device, or an empty one.
    pub fn load(root: &Root, pf: &IfName, h: &Handle) -> State {
        let fresh = State {
            device: h.to_string(),
            ..State::default()
        };
        let Ok(text) = fs::read_to_string(state_path(root, pf)) else {
            return fresh;
        };
        match serde_json::from_str::<State>(&text) {
            Ok(s) if s.device == fresh.device => s,
            Ok(_) => fresh,
            Err(e) => {
                warn!(pf = %pf, "ignoring unreadable {}: {e}", state_path(root, pf).display());
                fresh
            }
        }
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a record.
    pub fn save(&self, root: &Root, pf: &IfName) -> std::io::Result<()> {
        fs::create_dir_all(root.run_dir())?;
        let path = state_path(root, pf);
        let tmp = path.with_extension("json.tmp");
        fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        fs::rename(tmp, path)
    }

    pub(super) fn record(&mut self, vf: &sysfs::Vf, driver: Option<String>) {
        match self.vfs.iter_mut().find(|r| r.index == vf.index) {
            Some(r) if r.addr == vf.addr => {
                if r.driver.is_none() {
                    r.driver = driver;
                }
            }
            Some(r) => {
                *r = VfRecord {
                    index: vf.index,
                    addr: vf.addr.clone(),
                    driver,
                }
            }
            None => self.vfs.push(VfRecord {
                index: vf.index,
                addr: vf.addr.clone(),
                driver,
            }),
        }
        self.vfs.sort_by_key(|r| r.index);
    }
}

pub(super) fn save(st: &State, root: &Root, pf: &IfName) -> Result<(), StageError> {
    st.save(root, pf).map_err(|e| StageError::Other {
        pf: pf.to_string(),
        msg: format!("cannot write {}: {e}", state_path(root, pf).display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn state_record_keeps_first_known_driver() {
        let mut st = State::default();
        let vf = |a: &str| sysfs::Vf {
            index: 0,
            addr: a.into(),
            dir: "/x".into(),
        };
        st.record(&vf("0000:37:00.2"), Some("mlx5_core".into()));
        st.record(&vf("0000:37:00.2"), None);
        assert_eq!(st.vfs[0].driver.as_deref(), Some("mlx5_core"));
        st.record(&vf("0000:37:00.9"), None);
        assert_eq!(
            st.vfs[0].driver, None,
            "another device at this index: old record dropped"
        );
        assert_eq!(st.vfs.len(), 1);
    }
}
