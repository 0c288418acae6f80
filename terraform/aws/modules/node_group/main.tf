# One role's nodes: a launch template for SEV-SNP instances and an auto scaling group that
# replaces a node that fails. IMDSv2 only, with instance tags visible in it (the node reads its
# cloister-* tags there); no instance profile.

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

variable "instance_type" {
  type = string
}

variable "node_count" {
  type = number
}

variable "image_id" {
  type = string
}

variable "subnet_id" {
  type = string
}

variable "security_group_id" {
  type = string
}

variable "target_group_arns" {
  type = list(string)
}

variable "state_disk_gb" {
  type = number
}

variable "metadata" {
  type        = map(string)
  description = "The cloister-* keys lib/metadata reads (instance tags in IMDS)."
}

resource "aws_launch_template" "node" {
  name_prefix            = "${var.name}-"
  image_id               = var.image_id
  instance_type          = var.instance_type
  vpc_security_group_ids = [var.security_group_id]

  # The instance runs as an SEV-SNP guest; launching fails on hardware without it.
  cpu_options {
    amd_sev_snp = "enabled"
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  # The state disk the disk mapper encrypts (LUKS2) with a key released only after attestation.
  block_device_mappings {
    device_name = "/dev/sdb"
    ebs {
      volume_size           = var.state_disk_gb
      volume_type           = "gp3"
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.metadata, { Name = var.name })
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_autoscaling_group" "group" {
  name                = var.name
  min_size            = var.node_count
  max_size            = var.node_count
  desired_capacity    = var.node_count
  vpc_zone_identifier = [var.subnet_id]
  target_group_arns   = var.target_group_arns
  # A control plane that stops answering the load balancer's health check is replaced.
  health_check_type         = length(var.target_group_arns) > 0 ? "ELB" : "EC2"
  health_check_grace_period = 900
  # SEV-SNP instances start slowly.
  wait_for_capacity_timeout = "20m"
  launch_template {
    id      = aws_launch_template.node.id
    version = aws_launch_template.node.latest_version
  }
  dynamic "tag" {
    for_each = var.metadata
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}

output "name" {
  value = aws_autoscaling_group.group.name
}

output "launch_template_id" {
  value = aws_launch_template.node.id
}
