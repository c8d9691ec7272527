# One bucket for the Iceberg warehouse and Flink state (checkpoints, savepoints, HA).
resource "google_storage_bucket" "lake" {
  name                        = "${var.project_id}-${var.name}-lake"
  location                    = var.bucket_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Checkpoints and HA metadata are replaced every few seconds: old ones are garbage.
  lifecycle_rule {
    condition {
      age            = var.checkpoint_retention_days
      matches_prefix = ["flink/checkpoints/", "flink/ha/"]
    }
    action {
      type = "Delete"
    }
  }

  # Versioning guards against deletes; noncurrent versions expire after 30 days.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }
}

resource "google_storage_bucket" "access_logs" {
  name                        = "${var.project_id}-${var.name}-access-logs"
  location                    = var.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }
  #checkov:skip=CKV_GCP_62:This is the access-log sink itself; logging it into itself would loop.
}

resource "google_storage_bucket_iam_member" "workload_lake" {
  bucket = google_storage_bucket.lake.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.workload.email}"
}
