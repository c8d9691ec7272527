# Google Cloud Managed Service for Apache Kafka. Clients authenticate with SASL
# (OAUTHBEARER with the workload's Google identity); see README "Kafka authentication".
resource "google_managed_kafka_cluster" "main" {
  cluster_id = var.name
  location   = var.region

  capacity_config {
    vcpu_count   = var.kafka_vcpus
    memory_bytes = var.kafka_memory_gib * 1024 * 1024 * 1024
  }

  gcp_config {
    access_config {
      network_configs {
        subnet = google_compute_subnetwork.main.id
      }
    }
  }

  rebalance_config {
    mode = "AUTO_REBALANCE_ON_SCALE_UP"
  }

  labels = {
    app = var.name
  }
}

resource "google_managed_kafka_topic" "topics" {
  for_each = var.kafka_topics

  topic_id           = each.key
  cluster            = google_managed_kafka_cluster.main.cluster_id
  location           = var.region
  partition_count    = each.value.partitions
  replication_factor = 3
  configs = {
    "retention.ms"   = tostring(each.value.retention_ms)
    "cleanup.policy" = each.value.cleanup_policy
  }
}
