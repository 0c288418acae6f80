# One role's nodes: a confidential instance template and a zonal managed instance group that
# recreates a node that fails, each node with its own state disk and address that outlive a
# recreation.

variable "name" {
  type = string
}

variable "role" {
  type = string
  validation {
    condition     = contains(["control-plane", "worker"], var.role)
    error_message = "role: control-plane or worker."
  }
}

variable "zone" {
  type = string
}

variable "instance_type" {
  type = string
}

variable "node_count" {
  type = number
}

variable "image" {
  type = string
}

variable "tee" {
  type = object({
    instance_type    = string
    min_cpu_platform = string
    machine_families = string
    image_feature    = string
  })
}

variable "subnetwork" {
  type = string
}

variable "network_tag" {
  type = string
}

variable "boot_disk_gb" {
  type = number
}

variable "state_disk_gb" {
  type = number
}

variable "named_ports" {
  type = map(number)
}

variable "health_check_ids" {
  type = list(string)
}

variable "metadata" {
  type        = map(string)
  description = "The cloister-* keys lib/metadata reads."
}

resource "google_compute_instance_template" "node" {
  name_prefix      = "${var.name}-"
  machine_type     = var.instance_type
  min_cpu_platform = var.tee.min_cpu_platform
  tags             = [var.network_tag]
  labels = {
    cloister-role = var.role
  }

  confidential_instance_config {
    confidential_instance_type = var.tee.instance_type
  }

  # Confidential VMs cannot live-migrate: the host stops them for maintenance.
  scheduling {
    on_host_maintenance = "TERMINATE"
    automatic_restart   = true
    preemptible         = false
  }

  # The vTPM holds the measured boot; Secure Boot stays off (the UKI is not signed by a key
  # GCP's firmware trusts), the measurements are what is checked.
  shielded_instance_config {
    enable_vtpm                 = true
    enable_integrity_monitoring = true
    enable_secure_boot          = false
  }

  disk {
    boot         = true
    source_image = var.image
    disk_size_gb = var.boot_disk_gb
    disk_type    = "pd-balanced"
    auto_delete  = true
  }

  # The state disk the disk mapper encrypts (LUKS2) with a key released only after attestation.
  disk {
    boot         = false
    device_name  = "state-disk"
    disk_size_gb = var.state_disk_gb
    disk_type    = "pd-balanced"
    type         = "PERSISTENT"
    auto_delete  = true
  }

  network_interface {
    subnetwork = var.subnetwork
    nic_type   = "GVNIC"
  }

  metadata = merge(var.metadata, {
    block-project-ssh-keys = "TRUE"
  })

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_instance_group_manager" "group" {
  name               = var.name
  base_instance_name = var.name
  zone               = var.zone
  target_size        = var.node_count
  version {
    instance_template = google_compute_instance_template.node.id
  }
  dynamic "named_port" {
    for_each = var.named_ports
    content {
      name = named_port.key
      port = named_port.value
    }
  }
  # A node whose bootstrapper stops answering is recreated (same name, same state disk).
  dynamic "auto_healing_policies" {
    for_each = var.health_check_ids
    content {
      health_check      = auto_healing_policies.value
      initial_delay_sec = 900
    }
  }
  stateful_disk {
    device_name = "state-disk"
    delete_rule = "ON_PERMANENT_INSTANCE_DELETION"
  }
  # The node's address outlives a recreation too: its member record names it.
  stateful_internal_ip {
    interface_name = "nic0"
    delete_rule    = "ON_PERMANENT_INSTANCE_DELETION"
  }
  # A new template (only 'cloister upgrade apply' makes one after create: a new image) is
  # rolled out at once, one node at a time, each recreated under its name with its state disk
  # and address (docs/upgrade.md). The owner's CLI then waits until each node is a member
  # again, attested with the new image's measurements.
  update_policy {
    type                  = "PROACTIVE"
    minimal_action        = "REPLACE"
    replacement_method    = "RECREATE"
    max_unavailable_fixed = 1
    max_surge_fixed       = 0
  }
  wait_for_instances = false
}

output "name" {
  value = google_compute_instance_group_manager.group.name
}

output "instance_group" {
  value = google_compute_instance_group_manager.group.instance_group
}

output "template" {
  value = google_compute_instance_template.node.self_link
}
