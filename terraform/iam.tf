# The workloads' Google identity (Workload Identity): the chart's Kubernetes
# ServiceAccount "candleflow" in var.namespace acts as this service account, so pods hold
# no keys for GCS, Cloud SQL or Kafka.
resource "google_service_account" "workload" {
  account_id   = "${var.name}-workload"
  display_name = "Candleflow workloads (Flink jobs, ingest, serving, explainer)"
}

resource "google_service_account_iam_member" "workload_identity" {
  service_account_id = google_service_account.workload.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.namespace}/${var.name}]"
}

resource "google_project_iam_member" "workload" {
  for_each = toset([
    "roles/managedkafka.client",
    "roles/cloudsql.client",
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.workload.email}"
}

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption; customer keys add a KMS key ring to operate for public market data images.
  repository_id = var.name
  location      = var.region
  format        = "DOCKER"
  description   = "candleflow/job and candleflow/services images"

  docker_config {
    immutable_tags = true
  }
}

# The Anthropic key is never in Terraform: add a version to this secret by hand
#   gcloud secrets versions add <name>-anthropic-api-key --data-file=-
# and sync it into the cluster (External Secrets / Secret Manager CSI / kubectl).
resource "google_secret_manager_secret" "anthropic" {
  secret_id = "${var.name}-anthropic-api-key"
  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }
}

resource "google_secret_manager_secret_iam_member" "anthropic" {
  secret_id = google_secret_manager_secret.anthropic.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.workload.email}"
}
