# In-cluster software: cert-manager, the Flink Kubernetes Operator, then Candleflow.
resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.cert_manager_version
  namespace        = "cert-manager"
  create_namespace = true
  wait             = true

  set {
    name  = "crds.enabled"
    value = "true"
  }

  depends_on = [google_container_node_pool.main]
}

resource "helm_release" "flink_operator" {
  name             = "flink-kubernetes-operator"
  repository       = "https://downloads.apache.org/flink/flink-kubernetes-operator-${var.flink_operator_version}/"
  chart            = "flink-kubernetes-operator"
  version          = var.flink_operator_version
  namespace        = "flink-operator"
  create_namespace = true
  wait             = true

  set {
    name  = "watchNamespaces"
    value = "{${var.namespace}}"
  }

  depends_on = [helm_release.cert_manager]
}

resource "kubernetes_namespace" "candleflow" {
  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "candleflow"
    }
  }
  depends_on = [google_container_node_pool.main]
}

resource "kubernetes_secret" "catalog" {
  metadata {
    name      = "candleflow-catalog"
    namespace = kubernetes_namespace.candleflow.metadata[0].name
  }
  data = {
    password = random_password.catalog.result
  }
}

resource "random_password" "serving_token" {
  length  = 40
  special = false
}

resource "kubernetes_secret" "serving" {
  metadata {
    name      = "candleflow-serving"
    namespace = kubernetes_namespace.candleflow.metadata[0].name
  }
  data = {
    tokens = random_password.serving_token.result
  }
}

locals {
  lake             = "gs://${google_storage_bucket.lake.name}"
  kafka_bootstrap  = "bootstrap.${google_managed_kafka_cluster.main.cluster_id}.${var.region}.managedkafka.${var.project_id}.cloud.goog:9092"
  image_registry   = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
  catalog_jdbc_uri = "jdbc:postgresql://${google_sql_database_instance.catalog.private_ip_address}:5432/${google_sql_database.iceberg.name}?sslmode=require"

  # What Terraform knows, layered over the values file (helm merges later values on top).
  chart_overrides = {
    images = {
      registry = local.image_registry
      job      = { repository = "job", tag = var.image_tag }
      services = { repository = "services", tag = var.image_tag }
    }
    config = {
      kafkaBootstrap        = local.kafka_bootstrap
      kafkaSecurityProtocol = "SASL_SSL"
      catalog = {
        uri       = local.catalog_jdbc_uri
        user      = google_sql_user.iceberg.name
        warehouse = "${local.lake}/warehouse"
      }
    }
    serviceAccount = {
      create      = true
      name        = var.name
      annotations = { "iam.gke.io/gcp-service-account" = google_service_account.workload.email }
    }
    flink = {
      storage = {
        checkpoints = "${local.lake}/flink/checkpoints"
        savepoints  = "${local.lake}/flink/savepoints"
        ha          = "${local.lake}/flink/ha"
      }
    }
  }
}

resource "helm_release" "candleflow" {
  name      = "candleflow"
  chart     = "${path.module}/../helm/candleflow"
  namespace = kubernetes_namespace.candleflow.metadata[0].name
  # FlinkDeployments become ready only when the jobs run; the release waits for the
  # Deployments (serving, ingest, explainer) and leaves the jobs to the operator.
  wait    = true
  timeout = 900

  values = [
    file("${path.module}/${var.chart_values_file}"),
    yamlencode(local.chart_overrides),
  ]

  depends_on = [
    helm_release.flink_operator,
    kubernetes_secret.catalog,
    kubernetes_secret.serving,
    google_service_account_iam_member.workload_identity,
    google_managed_kafka_topic.topics,
  ]
}
