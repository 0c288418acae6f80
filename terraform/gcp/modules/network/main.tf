# The nodes' network: one subnet, outbound through Cloud NAT (nodes have no public address), and
# firewall rules for exactly the load-balanced ports. No SSH: a node has no login.

variable "name" {
  type = string
}

variable "region" {
  type = string
}

variable "node_cidr" {
  type = string
}

variable "pod_cidr" {
  type = string
}

variable "ports" {
  type = list(number)
}

locals {
  tag = var.name
  # Where Google's TCP proxies and health checks connect from
  # (cloud.google.com/load-balancing/docs/tcp, "Firewall rules").
  proxy_ranges = ["35.191.0.0/16", "130.211.0.0/22"]
}

resource "google_compute_network" "net" {
  name                    = var.name
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "nodes" {
  name                     = "${var.name}-nodes"
  network                  = google_compute_network.net.id
  region                   = var.region
  ip_cidr_range            = var.node_cidr
  private_ip_google_access = false
}

resource "google_compute_router" "router" {
  name    = "${var.name}-router"
  network = google_compute_network.net.id
  region  = var.region
}

resource "google_compute_router_nat" "nat" {
  name                               = "${var.name}-nat"
  router                             = google_compute_router.router.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
}

# From the load balancer's proxies and health checks: the served ports only.
resource "google_compute_firewall" "load_balancer" {
  name          = "${var.name}-lb"
  network       = google_compute_network.net.id
  direction     = "INGRESS"
  source_ranges = local.proxy_ranges
  target_tags   = [local.tag]
  allow {
    protocol = "tcp"
    ports    = [for p in var.ports : tostring(p)]
  }
}

# Between nodes and pods: Kubernetes, the CNI, the join service.
resource "google_compute_firewall" "internal" {
  name          = "${var.name}-internal"
  network       = google_compute_network.net.id
  direction     = "INGRESS"
  source_ranges = [var.node_cidr, var.pod_cidr]
  target_tags   = [local.tag]
  allow {
    protocol = "tcp"
  }
  allow {
    protocol = "udp"
  }
  allow {
    protocol = "icmp"
  }
}

output "network" {
  value = google_compute_network.net.id
}

output "subnetwork" {
  value = google_compute_subnetwork.nodes.id
}

output "node_tag" {
  value = local.tag
}
