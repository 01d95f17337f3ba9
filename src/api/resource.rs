//! The top-level resource types, shared by both versions through a macro.

/// Defines a namespaced custom resource `$kind` with `metadata`, `spec` and `status`, its list
/// type, and the `k8s_openapi::Resource` / `Metadata` impls (which give `kube::Resource`).
/// `apiVersion` and `kind` are kept as written so that a review's object serialises back unchanged.
macro_rules! custom_resource {
    ($kind:ident, $plural:literal, $version:literal, $spec:ty, $status:ty) => {
        #[doc = concat!("`serving.kserve.io/", $version, "` ", stringify!($kind), ".")]
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $kind {
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub api_version: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub kind: String,
            #[serde(default)]
            pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            #[serde(default)]
            pub spec: $spec,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub status: Option<$status>,
        }

        impl $kind {
            /// A new object with the given name and spec.
            pub fn new(name: &str, spec: $spec) -> Self {
                Self {
                    api_version: crate::api::resource::api_version::<Self>(),
                    kind: crate::api::resource::kind::<Self>(),
                    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        name: Some(name.to_string()),
                        ..Default::default()
                    },
                    spec,
                    status: None,
                }
            }
        }

        impl k8s_openapi::Resource for $kind {
            const API_VERSION: &'static str = concat!("serving.kserve.io/", $version);
            const GROUP: &'static str = "serving.kserve.io";
            const KIND: &'static str = stringify!($kind);
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::NamespaceResourceScope;
        }

        impl k8s_openapi::Metadata for $kind {
            type Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
            fn metadata(&self) -> &Self::Ty {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut Self::Ty {
                &mut self.metadata
            }
        }
    };
}
pub(crate) use custom_resource;

pub(crate) fn api_version<T: k8s_openapi::Resource>() -> String {
    T::API_VERSION.to_string()
}
pub(crate) fn kind<T: k8s_openapi::Resource>() -> String {
    T::KIND.to_string()
}
