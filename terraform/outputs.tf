output "cluster_name" {
  description = "GKE cluster name."
  value       = google_container_cluster.main.name
}

output "get_credentials" {
  description = "Command that points kubectl at the cluster."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.main.name} --region ${var.region} --project ${var.project_id}"
}

output "lake_bucket" {
  description = "GCS bucket of the Iceberg warehouse and Flink state."
  value       = google_storage_bucket.lake.name
}

output "kafka_bootstrap" {
  description = "Bootstrap address of the managed Kafka cluster (SASL_SSL)."
  value       = local.kafka_bootstrap
}

output "catalog_jdbc_uri" {
  description = "JDBC URI of the Iceberg catalog database (private IP)."
  value       = local.catalog_jdbc_uri
}

output "workload_service_account" {
  description = "Google service account the Candleflow pods act as (Workload Identity)."
  value       = google_service_account.workload.email
}

output "image_registry" {
  description = "Artifact Registry path to push candleflow/job and candleflow/services to."
  value       = local.image_registry
}

output "anthropic_secret" {
  description = "Secret Manager secret to add the Anthropic API key to (by hand)."
  value       = google_secret_manager_secret.anthropic.secret_id
}
