//! The one meaning of a pool's `parallelism` sizes (KServe's `ParallelismSpec`,
//! pkg/apis/serving/v1alpha2/llm_inference_service_types.go): GPUs per pod, data-parallel ranks
//! per pod, pods per LeaderWorkerSet group. The mutating webhook (GPU injection, vLLM flags), the
//! validating webhook, policies and the reconciler (LeaderWorkerSet `size`) all read them here.
//! Pure; the sizes are whatever the caller read (validation checks they are > 0).

/// The sizes of one `parallelism` block; `None` = not set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    pub tensor: Option<i64>,
    pub pipeline: Option<i64>,
    pub data: Option<i64>,
    pub data_local: Option<i64>,
}

impl Sizes {
    /// `tensor`, `pipeline`, `data`, `dataLocal`.
    pub const fn new(
        tensor: Option<i64>,
        pipeline: Option<i64>,
        data: Option<i64>,
        data_local: Option<i64>,
    ) -> Sizes {
        Sizes {
            tensor,
            pipeline,
            data,
            data_local,
        }
    }

    /// `data` or `dataLocal` set.
    pub fn is_data_parallel(&self) -> bool {
        self.data.is_some() || self.data_local.is_some()
    }

    /// Any size that implies GPUs is set.
    pub fn any(&self) -> bool {
        self.tensor.is_some() || self.pipeline.is_some() || self.is_data_parallel()
    }

    /// Data-parallel ranks in one pod (vLLM `--data-parallel-size-local`): `dataLocal`; unset,
    /// 1 on a multi-node pool (one rank per pod) and `data` on a single-node one.
    pub fn local_ranks(&self, multi_node: bool) -> i64 {
        match self.data_local {
            Some(l) => l,
            None if multi_node => 1,
            None => self.data.unwrap_or(1),
        }
    }

    /// GPUs one pod needs: `tensor x local ranks` with data parallelism; `tensor x pipeline`
    /// for pipeline parallelism in one pod (no worker); `tensor` per pod for multi-node pipeline
    /// parallelism (one stage per pod) and otherwise. Unset sizes count as 1.
    pub fn gpus_per_pod(&self, multi_node: bool) -> i64 {
        let tensor = self.tensor.unwrap_or(1);
        if self.is_data_parallel() {
            tensor.saturating_mul(self.local_ranks(multi_node))
        } else if let (Some(p), false) = (self.pipeline, multi_node) {
            tensor.saturating_mul(p)
        } else {
            tensor
        }
    }

    /// Pods in one LeaderWorkerSet group (leader included): `data / dataLocal` with data
    /// parallelism, else `pipeline`; at least 1.
    pub fn pods_per_group(&self) -> i64 {
        if self.is_data_parallel() {
            let local = self.data_local.filter(|l| *l > 0).unwrap_or(1);
            (self.data.unwrap_or(1) / local).max(1)
        } else {
            self.pipeline.filter(|p| *p > 0).unwrap_or(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sizes;

    #[test]
    fn table() {
        let s = Sizes::new;
        // (sizes, multi_node, gpus per pod, local ranks, pods per group if multi-node)
        let cases = [
            (s(None, None, None, None), false, 1, 1, 1),
            (s(Some(4), None, None, None), false, 4, 1, 1),
            (s(Some(2), Some(2), None, None), false, 4, 1, 2),
            (s(Some(2), Some(2), None, None), true, 2, 1, 2),
            (s(Some(1), None, Some(16), Some(8)), true, 8, 8, 2),
            (s(Some(2), None, Some(8), Some(2)), true, 4, 2, 4),
            (s(Some(1), None, Some(4), None), false, 4, 4, 4),
            (s(Some(1), None, Some(4), None), true, 1, 1, 4),
            (s(None, None, Some(3), Some(2)), true, 2, 2, 1),
        ];
        for (sizes, mn, gpus, local, group) in cases {
            assert_eq!(sizes.gpus_per_pod(mn), gpus, "{sizes:?} multi_node={mn}");
            assert_eq!(sizes.local_ranks(mn), local, "{sizes:?} multi_node={mn}");
            assert_eq!(sizes.pods_per_group(), group, "{sizes:?}");
        }
    }
}
