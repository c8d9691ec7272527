# Cloud SQL PostgreSQL for the Iceberg JDBC catalog (private IP only, TLS required).
resource "google_sql_database_instance" "catalog" {
  name                = "${var.name}-catalog"
  database_version    = "POSTGRES_18"
  region              = var.region
  deletion_protection = true
  #checkov:skip=CKV_GCP_6:TLS is enforced by ip_configuration.ssl_mode = ENCRYPTED_ONLY (the check reads the deprecated require_ssl).

  settings {
    tier              = var.sql_tier
    edition           = "ENTERPRISE"
    availability_type = var.sql_high_availability ? "REGIONAL" : "ZONAL"
    disk_type         = "PD_SSD"
    disk_size         = 10
    disk_autoresize   = true

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = google_compute_network.main.id
      enable_private_path_for_google_cloud_services = true
      ssl_mode                                      = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"
    }

    insights_config {
      query_insights_enabled = true
    }

    # Audit logging (flags checkov's CIS checks ask for); the catalog's traffic is tiny.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "iceberg" {
  name     = "iceberg"
  instance = google_sql_database_instance.catalog.name
}

resource "random_password" "catalog" {
  length  = 32
  special = false
}

# The password lives in Terraform state (encrypted GCS backend) and in one Kubernetes
# Secret; nothing else.
resource "google_sql_user" "iceberg" {
  name     = "iceberg"
  instance = google_sql_database_instance.catalog.name
  password = random_password.catalog.result
}
