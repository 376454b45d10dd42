// SPDX-License-Identifier: GPL-2.0
/*
 * cxmodel: the ConnectX (mlx5) VF-LAG behaviours vflag depends on, modelled on netdevsim
 * devices for the vflag VM test bed. Test code only, never shipped. Off unless cx_model=1.
 *
 * Follows drivers/net/ethernet/mellanox/mlx5/core/lag/{lag,debugfs}.c and
 * eswitch_offloads.c of Linux 6.12 (see tests/vm/cxmodel/README.md for the function map).
 * Driven only by the kernel's own events: bonding's netdev notifier events, devlink eswitch
 * mode set and sriov_numvfs writes. netdevsim devices 2k and 2k+1 are the two PFs of one NIC.
 */
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/seq_file.h>
#include <linux/workqueue.h>
#include <net/bonding.h>
#include <net/devlink.h>

#include "netdevsim.h"

static bool cx_model;
module_param(cx_model, bool, 0444);
MODULE_PARM_DESC(cx_model, "model ConnectX (mlx5) VF-LAG on netdevsim devices 2k/2k+1 (test bed)");
static unsigned int cx_lag_ms = 300;
module_param(cx_lag_ms, uint, 0644);
MODULE_PARM_DESC(cx_lag_ms, "firmware time of CREATE_LAG, spent after the lag map line");
static unsigned int cx_lag_delay_ms;
module_param(cx_lag_delay_ms, uint, 0644);
MODULE_PARM_DESC(cx_lag_delay_ms, "delay of the bond work after a bonding event (mlx5 re-queues it while busy)");
static bool cx_port_select_ft = true;
module_param(cx_port_select_ft, bool, 0644);
MODULE_PARM_DESC(cx_port_select_ft, "port selection flow table (ConnectX-6 Dx+): hash tx types give mode:hash");
static bool cx_shared_fdb = true;
module_param(cx_shared_fdb, bool, 0644);
MODULE_PARM_DESC(cx_shared_fdb, "shared FDB supported (switchdev LAG: Operation mode is single FDB)");
static int cx_create_lag_err;
module_param(cx_create_lag_err, int, 0644);
MODULE_PARM_DESC(cx_create_lag_err, "negative errno: CREATE_LAG fails with it");
static unsigned int cx_switchdev_ms_per_vf;
module_param(cx_switchdev_ms_per_vf, uint, 0644);
MODULE_PARM_DESC(cx_switchdev_ms_per_vf, "eSwitch mode change / VF change in switchdev: ms per VF");
static bool cx_fw_switchdev_first;
module_param(cx_fw_switchdev_first, bool, 0644);
MODULE_PARM_DESC(cx_fw_switchdev_first, "firmware refuses switchdev once VFs exist (ConnectX-6 Lx 26.42.1000)");
static bool cx_reregister_pf;
module_param(cx_reregister_pf, bool, 0644);
MODULE_PARM_DESC(cx_reregister_pf, "eSwitch mode change unregisters and registers the PF netdev again (mlx5 before 6.2, OFED)");

enum cx_mode { CX_LAG_NONE, CX_LAG_ROCE, CX_LAG_SRIOV };

struct cx_ldev;

struct cx_pf {
	struct cx_ldev *l;
	struct nsim_dev *dev;		/* NULL when this function is absent */
	struct net_device *netdev;	/* the PF netdev (port 0), NULL when not registered */
	struct dentry *dbg;		/* mlx5/<dev>/ */
	struct netdev_lag_lower_state_info state;
};

struct cx_ldev {
	struct list_head list;
	unsigned int nic;		/* netdevsim id / 2 */
	struct cx_pf pf[2];
	/* tracker, written by the notifier under cx_lock (mlx5: ldev->tracker) */
	bool is_bonded;
	enum netdev_lag_tx_type tx_type;
	/* under lock */
	struct mutex lock;
	int changes_in_progress;
	enum cx_mode mode;
	bool shared_fdb, hash;
	u8 v2p[2];
	struct delayed_work work;
};

static LIST_HEAD(cx_ldevs);
static DEFINE_SPINLOCK(cx_lock);	/* cx_ldevs, pf[].dev/netdev/state, tracker */
static DEFINE_MUTEX(cx_list_mutex);	/* adding/removing devices */
static struct workqueue_struct *cx_wq;
static struct dentry *cx_dbg_root;	/* /sys/kernel/debug/mlx5 */

static void cx_cables_forget(unsigned int id);

static struct device *cx_dev(struct cx_pf *p)
{
	return &p->dev->nsim_bus_dev->dev;
}

static struct cx_pf *cx_find(struct nsim_dev *d)
{
	struct cx_ldev *l;
	int i;

	list_for_each_entry(l, &cx_ldevs, list)
		for (i = 0; i < 2; i++)
			if (l->pf[i].dev == d)
				return &l->pf[i];
	return NULL;
}

static bool cx_switchdev(struct nsim_dev *d)
{
	return d->esw_mode == DEVLINK_ESWITCH_MODE_SWITCHDEV;
}

/* mlx5_lag_check_prereq */
static bool cx_prereq(struct cx_ldev *l)
{
	int i;

	for (i = 0; i < 2; i++)
		if (nsim_dev_get_vfs(l->pf[i].dev) && !cx_switchdev(l->pf[i].dev))
			return false;
	return l->pf[0].dev->esw_mode == l->pf[1].dev->esw_mode;
}

/* mlx5_infer_tx_affinity_mapping for two ports */
static void cx_map(struct netdev_lag_lower_state_info *st, u8 *ports)
{
	bool en0 = st[0].tx_enabled && st[0].link_up;
	bool en1 = st[1].tx_enabled && st[1].link_up;

	ports[0] = 1;
	ports[1] = 2;
	if (en0 && !en1)
		ports[1] = 1;
	else if (!en0 && en1)
		ports[0] = 2;
}

/* mlx5_lag_print_mapping */
static void cx_print_map(struct cx_ldev *l, struct netdev_lag_lower_state_info *st)
{
	struct device *dev0 = cx_dev(&l->pf[0]);
	int i, n = 0, on[2];

	if (l->hash) {
		for (i = 0; i < 2; i++)
			if (st[i].tx_enabled && st[i].link_up)
				on[n++] = i + 1;
		if (!n) {
			on[n++] = 1;
			on[n++] = 2;
		}
		if (n == 2)
			dev_info(dev0, "lag map active ports: %d, %d\n", on[0], on[1]);
		else
			dev_info(dev0, "lag map active ports: %d\n", on[0]);
	} else {
		dev_info(dev0, "lag map: port 1:%d port 2:%d\n", l->v2p[0], l->v2p[1]);
	}
}

/* mlx5_activate_lag + mlx5_create_lag */
static void cx_activate(struct cx_ldev *l, enum netdev_lag_tx_type tx_type,
			struct netdev_lag_lower_state_info *st)
{
	struct device *dev0 = cx_dev(&l->pf[0]);
	bool roce = true, shared, sw = true;
	int i;

	for (i = 0; i < 2; i++) {
		roce = roce && !nsim_dev_get_vfs(l->pf[i].dev) && !cx_switchdev(l->pf[i].dev);
		sw = sw && cx_switchdev(l->pf[i].dev);
	}
	shared = !roce && sw && cx_shared_fdb;
	l->hash = cx_port_select_ft && (roce || tx_type == NETDEV_LAG_TX_TYPE_HASH);
	cx_map(st, l->v2p);
	cx_print_map(l, st);
	dev_info(dev0, "shared_fdb:%d mode:%s\n", shared, l->hash ? "hash" : "queue_affinity");
	/* CREATE_LAG and the single FDB set-up are firmware commands under ldev->lock */
	if (cx_lag_ms)
		msleep(cx_lag_ms);
	if (cx_create_lag_err) {
		dev_err(dev0, "Failed to create LAG (%d)\n", cx_create_lag_err);
		if (roce)
			dev_err(dev0, "Failed to activate RoCE LAG\n");
		else
			dev_err(dev0, "Failed to activate VF LAG\n"
				"Make sure all VFs are unbound prior to VF LAG activation or deactivation\n");
		return;
	}
	if (shared)
		dev_info(dev0, "Operation mode is single FDB\n");
	l->shared_fdb = shared;
	l->mode = roce ? CX_LAG_ROCE : CX_LAG_SRIOV;
}

/* mlx5_do_bond, with ldev->lock held */
static void cx_do_bond(struct cx_ldev *l)
{
	struct netdev_lag_lower_state_info st[2];
	enum netdev_lag_tx_type tx_type;
	bool ready, do_bond;
	u8 ports[2];

	spin_lock_bh(&cx_lock);
	ready = l->pf[0].dev && l->pf[1].dev && l->pf[0].netdev && l->pf[1].netdev;
	do_bond = l->is_bonded;
	tx_type = l->tx_type;
	st[0] = l->pf[0].state;
	st[1] = l->pf[1].state;
	spin_unlock_bh(&cx_lock);
	do_bond = ready && do_bond && cx_prereq(l);

	if (do_bond && l->mode == CX_LAG_NONE) {
		cx_activate(l, tx_type, st);
	} else if (do_bond) {
		/* mlx5_modify_lag: MODIFY_LAG and the map line when the map changed */
		cx_map(st, ports);
		if (ports[0] != l->v2p[0] || ports[1] != l->v2p[1]) {
			memcpy(l->v2p, ports, sizeof(ports));
			cx_print_map(l, st);
		}
	} else if (l->mode != CX_LAG_NONE) {
		/* mlx5_disable_lag -> mlx5_deactivate_lag: DESTROY_LAG, silent on success */
		l->mode = CX_LAG_NONE;
		l->shared_fdb = false;
		l->hash = false;
	}
}

static void cx_bond_work(struct work_struct *w)
{
	struct cx_ldev *l = container_of(to_delayed_work(w), struct cx_ldev, work);

	mutex_lock(&l->lock);
	if (l->changes_in_progress) {
		mutex_unlock(&l->lock);
		queue_delayed_work(cx_wq, &l->work, HZ);
		return;
	}
	cx_do_bond(l);
	mutex_unlock(&l->lock);
}

/* ---- bonding events (mlx5_lag_netdev_event) ---- */

static int cx_idx(struct cx_ldev *l, const struct net_device *ndev)
{
	return l->pf[0].netdev == ndev ? 0 : l->pf[1].netdev == ndev ? 1 : -1;
}

/* mlx5_handle_changeupper_event; cx_lock held */
static bool cx_changeupper(struct cx_ldev *l, struct netdev_notifier_changeupper_info *info)
{
	struct net_device *upper = info->upper_dev, *lower;
	struct netdev_lag_upper_info *up = NULL;
	int num_slaves = 0, idx;
	bool is_in_lag, supported, bonded, changed = false;
	u8 status = 0;

	if (!netif_is_lag_master(upper))
		return false;
	if (info->linking)
		up = info->upper_info;
	rcu_read_lock();
	for_each_netdev_in_bond_rcu(upper, lower) {
		idx = cx_idx(l, lower);
		if (idx >= 0)
			status |= 1 << idx;
		num_slaves++;
	}
	rcu_read_unlock();
	if (!(status & 3))
		return false;
	if (up)
		l->tx_type = up->tx_type;
	is_in_lag = num_slaves == 2 && status == 3;
	supported = l->tx_type == NETDEV_LAG_TX_TYPE_ACTIVEBACKUP ||
		    l->tx_type == NETDEV_LAG_TX_TYPE_HASH;
	bonded = is_in_lag && supported;
	if (l->is_bonded != bonded) {
		l->is_bonded = bonded;
		changed = true;
	}
	if (!is_in_lag)
		return changed;
	if (!(l->pf[0].netdev && l->pf[1].netdev))
		NL_SET_ERR_MSG_MOD(info->info.extack,
				   "Can't activate LAG offload, PF is configured with more than 64 VFs");
	else if (!supported)
		NL_SET_ERR_MSG_MOD(info->info.extack,
				   "Can't activate LAG offload, TX type isn't supported");
	return changed;
}

static int cx_netdev_event(struct notifier_block *nb, unsigned long event, void *ptr)
{
	struct net_device *ndev = netdev_notifier_info_to_dev(ptr);
	struct netdev_notifier_changelowerstate_info *lsi = ptr;
	struct cx_ldev *l;
	bool changed;
	int idx;

	if (event != NETDEV_CHANGEUPPER && event != NETDEV_CHANGELOWERSTATE)
		return NOTIFY_DONE;
	spin_lock_bh(&cx_lock);
	list_for_each_entry(l, &cx_ldevs, list) {
		changed = false;
		if (event == NETDEV_CHANGEUPPER) {
			changed = cx_changeupper(l, ptr);
		} else if (netif_is_lag_port(ndev) && lsi->lower_state_info) {
			idx = cx_idx(l, ndev);
			if (idx >= 0) {
				struct netdev_lag_lower_state_info *s = lsi->lower_state_info;

				l->pf[idx].state = *s;
				changed = true;
			}
		}
		if (changed)
			queue_delayed_work(cx_wq, &l->work, msecs_to_jiffies(cx_lag_delay_ms));
	}
	spin_unlock_bh(&cx_lock);
	return NOTIFY_DONE;
}

static struct notifier_block cx_nb = { .notifier_call = cx_netdev_event };

/* ---- debugfs (lag/debugfs.c) ---- */

static const char *cx_type(struct cx_ldev *l)
{
	return l->mode == CX_LAG_ROCE ? "roce" : "switchdev";
}

#define CX_SHOW(name, ...)						\
static int name##_show(struct seq_file *f, void *unused)		\
{									\
	struct cx_pf *p = f->private;					\
	struct cx_ldev *l = p->l;					\
	int ret = 0;							\
									\
	mutex_lock(&l->lock);						\
	__VA_ARGS__							\
	mutex_unlock(&l->lock);						\
	return ret;							\
}									\
DEFINE_SHOW_ATTRIBUTE(name)

CX_SHOW(state, seq_printf(f, "%s\n", l->mode ? "active" : "disabled"););
CX_SHOW(type, if (l->mode) seq_printf(f, "%s\n", cx_type(l)); else ret = -EINVAL;);
CX_SHOW(port_sel_mode,
	if (l->mode) seq_printf(f, "%s\n", l->hash ? "hash" : "queue_affinity"); else ret = -EINVAL;);
CX_SHOW(flags,
	if (l->mode) seq_printf(f, "shared_fdb:%s\nfdb_selection_mode:%s\n",
				l->shared_fdb ? "on" : "off", l->shared_fdb ? "native" : "affinity");
	else ret = -EINVAL;);
CX_SHOW(mapping,
	if (!l->mode) ret = -EINVAL;
	else if (l->hash) seq_printf(f, "1\n2\n");
	else seq_printf(f, "1:%d\n2:%d\n", l->v2p[0], l->v2p[1]););
CX_SHOW(members,
	if (l->pf[0].dev) seq_printf(f, "%s\n", dev_name(cx_dev(&l->pf[0])));
	if (l->pf[1].dev) seq_printf(f, "%s\n", dev_name(cx_dev(&l->pf[1]))););

/* ---- hooks called by netdevsim (dev.c) ---- */

/* mlx5_lag_add_mdev + mlx5_ldev_add_debugfs; devlink instance locked */
void nsim_cx_dev_add(struct nsim_dev *d)
{
	unsigned int id = d->nsim_bus_dev->dev.id;
	struct cx_ldev *l, *n = NULL;
	struct dentry *lag;
	struct cx_pf *p;

	if (!cx_model)
		return;
	mutex_lock(&cx_list_mutex);
	list_for_each_entry(l, &cx_ldevs, list)
		if (l->nic == id / 2)
			n = l;
	if (!n) {
		n = kzalloc(sizeof(*n), GFP_KERNEL);
		if (!n)
			goto out;
		n->nic = id / 2;
		mutex_init(&n->lock);
		INIT_DELAYED_WORK(&n->work, cx_bond_work);
		n->pf[0].l = n;
		n->pf[1].l = n;
		spin_lock_bh(&cx_lock);
		list_add(&n->list, &cx_ldevs);
		spin_unlock_bh(&cx_lock);
	}
	p = &n->pf[id & 1];
	mutex_lock(&n->lock);
	spin_lock_bh(&cx_lock);
	p->dev = d;
	spin_unlock_bh(&cx_lock);
	mutex_unlock(&n->lock);
	p->dbg = debugfs_create_dir(dev_name(cx_dev(p)), cx_dbg_root);
	lag = debugfs_create_dir("lag", p->dbg);
	debugfs_create_file("type", 0444, lag, p, &type_fops);
	debugfs_create_file("port_sel_mode", 0444, lag, p, &port_sel_mode_fops);
	debugfs_create_file("state", 0444, lag, p, &state_fops);
	debugfs_create_file("flags", 0444, lag, p, &flags_fops);
	debugfs_create_file("mapping", 0444, lag, p, &mapping_fops);
	debugfs_create_file("members", 0444, lag, p, &members_fops);
out:
	mutex_unlock(&cx_list_mutex);
}

/* mlx5_lag_remove_mdev */
void nsim_cx_dev_del(struct nsim_dev *d)
{
	struct cx_ldev *l;
	struct cx_pf *p;
	bool last;

	if (cx_model)
		cx_cables_forget(d->nsim_bus_dev->dev.id);
	mutex_lock(&cx_list_mutex);
	p = cx_find(d);
	if (!p)
		goto out;
	l = p->l;
	debugfs_remove_recursive(p->dbg);
	p->dbg = NULL;
	mutex_lock(&l->lock);
	spin_lock_bh(&cx_lock);
	p->dev = NULL;
	p->netdev = NULL;
	last = !l->pf[0].dev && !l->pf[1].dev;
	if (last)
		list_del(&l->list);
	spin_unlock_bh(&cx_lock);
	if (!last)
		cx_do_bond(l);
	mutex_unlock(&l->lock);
	if (last) {
		cancel_delayed_work_sync(&l->work);
		kfree(l);
	}
out:
	mutex_unlock(&cx_list_mutex);
}

/* mlx5_lag_add_netdev / mlx5_lag_remove_netdev: the PF netdev (port 0) */
void nsim_cx_netdev(struct nsim_dev *d, struct net_device *ndev, bool add)
{
	struct cx_pf *p;

	if (!cx_model)
		return;
	mutex_lock(&cx_list_mutex);
	p = cx_find(d);
	if (p) {
		spin_lock_bh(&cx_lock);
		if (add) {
			p->netdev = ndev;
			p->state.link_up = 0;
			p->state.tx_enabled = 0;
		} else if (p->netdev == ndev) {
			p->netdev = NULL;
		}
		spin_unlock_bh(&cx_lock);
		queue_delayed_work(cx_wq, &p->l->work, 0);
	}
	mutex_unlock(&cx_list_mutex);
}

/* mlx5_lag_disable_change: tear the LAG down while the eSwitch changes */
static struct cx_pf *cx_change_begin(struct nsim_dev *d)
{
	struct cx_pf *p;

	mutex_lock(&cx_list_mutex);
	p = cx_find(d);
	mutex_unlock(&cx_list_mutex);
	if (!p)
		return NULL;
	mutex_lock(&p->l->lock);
	p->l->changes_in_progress++;
	if (p->l->mode != CX_LAG_NONE) {
		p->l->mode = CX_LAG_NONE;
		p->l->shared_fdb = false;
		p->l->hash = false;
	}
	mutex_unlock(&p->l->lock);
	return p;
}

/* mlx5_lag_enable_change */
static void cx_change_end(struct cx_pf *p)
{
	mutex_lock(&p->l->lock);
	p->l->changes_in_progress--;
	mutex_unlock(&p->l->lock);
	queue_delayed_work(cx_wq, &p->l->work, 0);
}

static void cx_esw_log(struct cx_pf *p, const char *what, bool switchdev, unsigned int nvfs)
{
	dev_info(cx_dev(p), "E-Switch: %s: mode(%s), nvfs(%u), necvfs(0), active vports(%u)\n",
		 what, switchdev ? "OFFLOADS" : "LEGACY", nvfs, nvfs + (switchdev ? 2 : 1));
}

/* ---- PF re-registration (cx_reregister_pf) ----
 * A re-registered PF netdev is a new netdevsim, and nsim_destroy cut its cable (peer link); a
 * real port keeps its cable, so the model plugs it back in. Cables are kept by (device id, port
 * index) until both ends exist again (the peer may be re-registering at the same time). rtnl.
 */
struct cx_cable {
	bool used;
	unsigned int id[2], port[2];
};
static struct cx_cable cx_cables[16];

static bool cx_end_is(struct netdevsim *ns, unsigned int id, unsigned int port)
{
	return ns->nsim_bus_dev->dev.id == id && ns->nsim_dev_port->port_index == port;
}

void nsim_cx_cable_save(struct netdevsim *ns)
{
	struct netdevsim *peer;
	int i;

	rtnl_lock();
	peer = rtnl_dereference(ns->peer);
	for (i = 0; peer && i < ARRAY_SIZE(cx_cables); i++) {
		if (cx_cables[i].used)
			continue;
		cx_cables[i] = (struct cx_cable){ true,
			{ ns->nsim_bus_dev->dev.id, peer->nsim_bus_dev->dev.id },
			{ ns->nsim_dev_port->port_index, peer->nsim_dev_port->port_index } };
		break;
	}
	rtnl_unlock();
}

void nsim_cx_cable_restore(struct netdevsim *ns)
{
	struct net_device *d;
	struct netdevsim *o;
	int i, me, other;

	rtnl_lock();
	for (i = 0; i < ARRAY_SIZE(cx_cables); i++) {
		struct cx_cable *c = &cx_cables[i];

		if (!c->used)
			continue;
		me = cx_end_is(ns, c->id[0], c->port[0]) ? 0 :
		     cx_end_is(ns, c->id[1], c->port[1]) ? 1 : -1;
		if (me < 0)
			continue;
		other = !me;
		for_each_netdev(dev_net(ns->netdev), d) {
			if (!netdev_is_nsim(d) || d->reg_state != NETREG_REGISTERED)
				continue;
			o = netdev_priv(d);
			if (o == ns || !cx_end_is(o, c->id[other], c->port[other]))
				continue;
			/* both ends exist: plug in (link_device_store), or drop a stale record */
			if (!rtnl_dereference(o->peer) && !rtnl_dereference(ns->peer)) {
				rcu_assign_pointer(ns->peer, o);
				rcu_assign_pointer(o->peer, ns);
				if (netif_running(ns->netdev) && netif_running(d)) {
					netif_carrier_on(ns->netdev);
					netif_carrier_on(d);
				}
			}
			c->used = false;
			break;
		}
	}
	rtnl_unlock();
}

static void cx_cables_forget(unsigned int id)
{
	int i;

	rtnl_lock();
	for (i = 0; i < ARRAY_SIZE(cx_cables); i++)
		if (cx_cables[i].used && (cx_cables[i].id[0] == id || cx_cables[i].id[1] == id))
			cx_cables[i].used = false;
	rtnl_unlock();
}

/* mlx5_devlink_eswitch_mode_set: called only when the mode changes; devlink locked */
int nsim_cx_esw_mode_set(struct nsim_dev *d, u16 mode, struct netlink_ext_ack *extack,
			 int (*set)(struct nsim_dev *, u16, struct netlink_ext_ack *))
{
	unsigned int nvfs = nsim_dev_get_vfs(d);
	bool to_sw = mode == DEVLINK_ESWITCH_MODE_SWITCHDEV;
	struct cx_pf *p;
	int err;

	if (!cx_model)
		return set(d, mode, extack);
	p = cx_change_begin(d);
	if (!p)
		return set(d, mode, extack);
	if (nvfs || cx_switchdev(d))
		cx_esw_log(p, "Disable", cx_switchdev(d), nvfs);
	if (to_sw && nvfs && cx_fw_switchdev_first) {
		/* esw_create_offloads_fdb_tables -> esw_offloads_start */
		dev_warn(cx_dev(p), "E-Switch: Failed to create slow path FDB Table err %d\n", -EINVAL);
		NL_SET_ERR_MSG_MOD(extack, "Failed setting eswitch to offloads");
		err = -EINVAL;
		goto out;
	}
	if (cx_switchdev_ms_per_vf && nvfs)
		msleep(cx_switchdev_ms_per_vf * nvfs);
	/* mlx5 before 6.2 (and OFED): the NIC netdev is unregistered and the uplink representor
	 * registered as a new netdev before the VF representors (esw_offloads_enable), and the
	 * other way round when going back to legacy; 6.12 keeps the netdev (profile change) */
	if (to_sw && cx_reregister_pf) {
		err = nsim_dev_pf_reregister(d);
		if (err)
			goto out;
	}
	err = set(d, mode, extack);
	if (!err && !to_sw && cx_reregister_pf)
		err = nsim_dev_pf_reregister(d);
	if (!err && (nvfs || to_sw))
		cx_esw_log(p, "Enable", to_sw, nvfs);
out:
	cx_change_end(p);
	return err;
}

/* sriov_numvfs (mlx5_core_sriov_configure): before the change; devlink locked */
void *nsim_cx_vfs_begin(struct nsim_dev *d, unsigned int num_vfs)
{
	struct cx_pf *p;

	if (!cx_model)
		return NULL;
	/* mlx5_eswitch_enable toggles the LAG when the FDB does not exist yet (legacy) */
	if (!cx_switchdev(d)) {
		p = cx_change_begin(d);
		return p;
	}
	if (cx_switchdev_ms_per_vf && num_vfs)
		msleep(cx_switchdev_ms_per_vf * num_vfs);
	return NULL;
}

/* after the change: re-evaluate; in switchdev with 0 VFs mlx5 stays in switchdev */
void nsim_cx_vfs_end(struct nsim_dev *d, void *cookie, bool was_switchdev)
{
	struct cx_pf *p;

	if (!cx_model)
		return;
	if (was_switchdev)
		d->esw_mode = DEVLINK_ESWITCH_MODE_SWITCHDEV;
	if (cookie) {
		cx_change_end(cookie);
		return;
	}
	mutex_lock(&cx_list_mutex);
	p = cx_find(d);
	if (p)
		queue_delayed_work(cx_wq, &p->l->work, 0);
	mutex_unlock(&cx_list_mutex);
}

int nsim_cx_init(void)
{
	int err;

	if (!cx_model)
		return 0;
	cx_wq = alloc_ordered_workqueue("mlx5_lag", 0);
	if (!cx_wq)
		return -ENOMEM;
	cx_dbg_root = debugfs_create_dir("mlx5", NULL);
	err = register_netdevice_notifier(&cx_nb);
	if (err) {
		debugfs_remove_recursive(cx_dbg_root);
		destroy_workqueue(cx_wq);
		return err;
	}
	pr_info("netdevsim: ConnectX (mlx5) VF-LAG model on (test bed)\n");
	return 0;
}

void nsim_cx_exit(void)
{
	if (!cx_model)
		return;
	unregister_netdevice_notifier(&cx_nb);
	debugfs_remove_recursive(cx_dbg_root);
	destroy_workqueue(cx_wq);
}
