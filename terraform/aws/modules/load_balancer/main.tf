# A network load balancer, a TCP listener and target group per port. TCP only: aTLS ends on
# the node.

variable "name" {
  type        = string
  description = "At most 26 characters: AWS limits load balancer and target group names to 32."
  validation {
    condition     = length(var.name) <= 26
    error_message = "name: at most 26 characters."
  }
}

variable "vpc_id" {
  type = string
}

variable "subnet_id" {
  type = string
}

variable "ports" {
  type = map(number)
}

resource "aws_lb" "lb" {
  name               = var.name
  load_balancer_type = "network"
  internal           = false
  subnets            = [var.subnet_id]
}

resource "aws_lb_target_group" "port" {
  for_each    = var.ports
  name        = "${var.name}-${each.value}"
  port        = each.value
  protocol    = "TCP"
  vpc_id      = var.vpc_id
  target_type = "instance"
  # Off: with the client's address kept, a control plane that reaches the API server through
  # the balancer (its kubelet does) and is balanced to itself never gets an answer (hairpin).
  # The nodes see the balancer's private address instead (the VPC rule lets it in).
  preserve_client_ip = "false"
  health_check {
    protocol            = "TCP"
    port                = tostring(each.value)
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "port" {
  for_each          = var.ports
  load_balancer_arn = aws_lb.lb.arn
  port              = each.value
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.port[each.key].arn
  }
}

output "dns_name" {
  value = aws_lb.lb.dns_name
}

output "target_group_arns" {
  value = { for k, t in aws_lb_target_group.port : k => t.arn }
}
