//! The runtime's host of `app-video` / `app-audio` nodes: this process.
//! For each hosted node the runtime hands over its config; the host joins
//! the graph as that node on a thread of its own, and keeps the node where
//! the app's [`crate::VideoInput`] / [`crate::AudioInput`] reach it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context};
use node_api::NodeConfig;
use node_catalog::kinds::{app_audio, app_video};
use runtime::graph::Graph;
use runtime::run::{HostedEnd, NodeHost};

use crate::input::{Origin, Slot, Takes};

/// The hosted nodes of one run.
pub(crate) struct AppHost {
    slots: Mutex<BTreeMap<String, Arc<Slot>>>,
    /// Back-pressure (`WhenBehind::Wait`): every queue downstream blocks.
    no_drop: bool,
}

impl AppHost {
    /// A slot for every hosted node of `graph`, before the run starts, so
    /// the app can hold its inputs at once.
    pub fn new(graph: &Graph, no_drop: bool) -> anyhow::Result<Arc<AppHost>> {
        let origin = Origin::default();
        let mut slots = BTreeMap::new();
        for node in graph.nodes.iter().filter(|n| n.is_hosted()) {
            let takes = match node.kind_name().as_str() {
                "app-video" => Takes::Video(app_video::Settings::from_params(&node.params)?),
                "app-audio" => Takes::Audio(app_audio::Settings::from_params(&node.params)?),
                other => return Err(anyhow!("node `{}`: no host for kind {other}", node.id)),
            };
            slots.insert(node.id.clone(), Slot::new(&node.id, takes, origin.clone()));
        }
        Ok(Arc::new(AppHost {
            slots: Mutex::new(slots),
            no_drop,
        }))
    }

    pub fn slot(&self, node: &str) -> Option<Arc<Slot>> {
        self.slots.lock().unwrap().get(node).cloned()
    }

    pub fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.lock().unwrap().values().cloned().collect()
    }

    /// Ends every hosted stream (end-of-stream downstream), all at once: a
    /// node's finish waits for its consumers, and sync finishes only when
    /// both its video and its audio have ended.
    pub fn finish_all(&self) {
        std::thread::scope(|scope| {
            for slot in self.slots() {
                scope.spawn(move || slot.finish());
            }
        });
    }
}

impl NodeHost for AppHost {
    fn start(&self, node: &str, config: NodeConfig, ended: HostedEnd) -> anyhow::Result<()> {
        let slot = self
            .slot(node)
            .ok_or_else(|| anyhow!("node `{node}` is not hosted by this application"))?;
        let no_drop = self.no_drop;
        std::thread::Builder::new()
            .name(format!("app-{node}"))
            .spawn(move || slot.connect(config, ended, no_drop))
            .with_context(|| format!("node `{node}`: starting its thread"))?;
        Ok(())
    }
}
